#!/usr/bin/env bash
# The main job end to end on an embedded default, on a fresh Debian machine.
# Installs what it needs into ./.venv, then runs prepare for the default
# roles with the containerized environments and shows docker_registry.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${DEMO_OUTPUT:-demo-output}
tools/install-deps.sh
if [ ! -x .venv/bin/openstack ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check .
mkdir -p "$OUT"
set -x
.venv/bin/openstack overcloud container image prepare \
    --namespace docker.io/tripleopike --tag current-tripleo \
    --push-destination 192.168.24.1:8787 \
    -e environments/docker.yaml -e environments/docker-ha.yaml \
    --output-images-file "$OUT/overcloud_containers.yaml" \
    --output-env-file "$OUT/docker_registry.yaml" -f value -c Image
set +x
echo "== $OUT/docker_registry.yaml"
cat "$OUT/docker_registry.yaml"
