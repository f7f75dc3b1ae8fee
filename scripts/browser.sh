#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver, for the dashboard's browser tests
# (tests/integration/ui.rs, which start chromedriver themselves on a free loopback port).
#
#   scripts/browser.sh install   apt-get install chromium chromium-driver when either is
#                                missing (as root); quick when both are installed
#
# No test tool downloads its own browser here: only Debian's packages are used.
set -euo pipefail

die() { echo "browser.sh: $*" >&2; exit 1; }

installed() {
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

install() {
    if ! installed; then
        command -v apt-get >/dev/null 2>&1 || die "chromium is missing and there is no apt-get to install it"
        [ "$(id -u)" = 0 ] || die "chromium is missing; run as root to apt-get install chromium chromium-driver"
        echo "browser.sh: installing Debian's chromium and chromium-driver"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
            || die "apt-get install chromium chromium-driver failed"
    fi
    chromium --version
    chromedriver --version
}

case "${1:-}" in
    install) install ;;
    *) die "usage: $0 install" ;;
esac
