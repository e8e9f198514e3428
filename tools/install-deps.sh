#!/usr/bin/env bash
# Debian packages the tests and the demo start for real: the distribution
# registry, skopeo (cross-checks), htpasswd (bcrypt users), openssl (CA),
# haproxy (a real proxy in front of a test registry), a Docker daemon (docker.io,
# containerd, runc) for the daemon-source tests, and python3-venv: Debian's
# python3 is externally managed (PEP 668), so tox and the demo's install go
# into virtualenvs, which need it.
set -euo pipefail
PACKAGES="docker-registry skopeo apache2-utils openssl haproxy docker.io containerd runc python3-venv"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    # apt's and debconf's chatter goes to a log, shown only when apt fails
    LOG=$(mktemp)
    if ! { $SUDO apt-get update -qq && \
           $SUDO apt-get install -y -qq --no-install-recommends $missing; } >"$LOG" 2>&1; then
        cat "$LOG" >&2
        rm -f "$LOG"
        exit 1
    fi
    rm -f "$LOG"
fi
# The packaged registry service listens on every interface; we start our own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q docker-registry 2>/dev/null; then
    systemctl stop docker-registry || true
fi
