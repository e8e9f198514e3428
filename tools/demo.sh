#!/usr/bin/env bash
# The main job end to end on an embedded default, on a fresh Debian machine:
#   1. install what it needs (Debian packages, this package into ./.venv,
#      a virtualenv made by the python3 first on PATH: Debian's own python3
#      is externally managed (PEP 668) and refuses a system-wide pip install);
#   2. start a local "upstream" registry and an undercloud registry on
#      127.0.0.1:8787 (or a free port when 8787 is taken);
#   3. prepare: the images of the default roles with environments/docker.yaml
#      and docker-ha.yaml, pushed to the undercloud registry; seed the upstream
#      with small Kolla-like images of exactly those names;
#   4. upload them, then upload again (a re-run is nearly free);
#   5. validate the deploy environments against the result, show
#      docker_registry.yaml, and stop both registries.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${DEMO_OUTPUT:-$ROOT/demo-output}
tools/install-deps.sh
rm -rf "$OUT" && mkdir -p "$OUT"
[ -x .venv/bin/openstack ] || python3 -m venv .venv
# pip's own chatter goes to a log; it is shown only when the install fails
.venv/bin/pip install -q --disable-pip-version-check . > "$OUT/pip-install.log" 2>&1 \
    || { cat "$OUT/pip-install.log"; exit 1; }
OS=$ROOT/.venv/bin/openstack

free_port() {
    .venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port_free() {
    .venv/bin/python -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $1)) == 0)"
}
UPSTREAM=127.0.0.1:$(free_port)
if port_free 8787; then UNDERCLOUD=127.0.0.1:8787; else UNDERCLOUD=127.0.0.1:$(free_port); fi

stop_all() {
    "$OS" overcloud container registry stop --state-dir "$OUT/undercloud-registry" >/dev/null 2>&1 || true
    "$OS" overcloud container registry stop --state-dir "$OUT/upstream-registry" >/dev/null 2>&1 || true
}
trap stop_all EXIT

# a blank line between steps, none before the first
STEPS=0
step() { [ $((STEPS++)) -eq 0 ] || echo; printf '== %s\n' "$*"; }

step "start the upstream registry ($UPSTREAM) and the undercloud registry ($UNDERCLOUD)"
"$OS" overcloud container registry start --address "$UPSTREAM" \
    --state-dir "$OUT/upstream-registry" -f value -c url
"$OS" overcloud container registry start --address "$UNDERCLOUD" \
    --state-dir "$OUT/undercloud-registry" -f value -c url

step "prepare: images of the enabled containerized services, env pointing at $UNDERCLOUD"
"$OS" overcloud container image prepare \
    --namespace "$UPSTREAM/tripleopike" --prefix centos-binary- --tag current-tripleo \
    --push-destination "$UNDERCLOUD" \
    -e environments/docker.yaml -e environments/docker-ha.yaml \
    --output-images-file "$OUT/overcloud_containers.yaml" \
    --output-env-file "$OUT/docker_registry.yaml" -f value -c Image | wc -l \
    | xargs printf '%s images selected\n'

step "seed the upstream with small Kolla-like images of those names"
.venv/bin/python tools/demo_seed.py "$OUT/overcloud_containers.yaml" \
    "$UPSTREAM/tripleopike" centos-binary- current-tripleo

step "upload into the undercloud registry"
"$OS" overcloud container image upload --config-file "$OUT/overcloud_containers.yaml" \
    --insecure-registry "$UPSTREAM" -f value -c Result | sort | uniq -c

step "upload again: every image already present"
"$OS" overcloud container image upload --config-file "$OUT/overcloud_containers.yaml" \
    --insecure-registry "$UPSTREAM" -f value -c Result | sort | uniq -c

step "validate the deploy environments with the generated parameters (and that every image exists)"
"$OS" overcloud container environment validate \
    -e environments/docker.yaml -e environments/docker-ha.yaml \
    -e "$OUT/docker_registry.yaml" --check-images

step "$OUT/docker_registry.yaml (first lines)"
head -n 12 "$OUT/docker_registry.yaml"
echo "  ... ($(grep -c 'Image:' "$OUT/docker_registry.yaml") image parameters)"
tail -n 2 "$OUT/docker_registry.yaml"
step "done: deploy with -e environments/docker.yaml -e environments/docker-ha.yaml -e $OUT/docker_registry.yaml"
