#!/usr/bin/env bash
# Debian packages the tests and the demo start for real: the distribution
# registry, skopeo (cross-checks), htpasswd (bcrypt users), openssl (CA) and
# a Docker daemon (docker.io, containerd, runc) for the daemon-source tests.
set -euo pipefail
PACKAGES="docker-registry skopeo apache2-utils openssl docker.io containerd runc"
missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The packaged registry service listens on every interface; we start our own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q docker-registry 2>/dev/null; then
    systemctl stop docker-registry || true
fi
