"""A scaled-out destination: two docker-registry replicas on one storage
directory with one http.secret, behind Debian's haproxy balancing every
request round robin.  The upload goes through the balancer with the real
CLI and every image is then checked through each replica directly."""
import collections
import hashlib
import os
import shutil
import socket
import subprocess
import time

import pytest
import requests
import yaml

from osc_cli import openstack
from tripleo_containers.registry import local
from tripleo_containers.testing import faultproxy
from tripleo_containers.testing import images
from tripleo_containers.testing import registry_log

# Every request is balanced on its own: http-server-close ends the server
# side after each response and http-reuse never keeps haproxy from handing
# one replica's idle connection to the next request.
HAPROXY_CONFIG = """\
global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-server-close
    http-reuse never
frontend registry
    bind {front}
    default_backend replicas
backend replicas
    balance roundrobin
{servers}
"""


@pytest.fixture
def haproxy(tmp_path):
    """``haproxy(backends)`` -> "127.0.0.1:PORT" of a balancer in front of
    the "host:port" backends; stopped by PID at teardown."""
    if shutil.which("haproxy") is None:
        msg = "haproxy not installed (apt-get install haproxy)"
        if os.environ.get("TRIPLEO_CONTAINERS_REQUIRE_TOOLS"):
            pytest.fail(msg)
        pytest.skip(msg)
    started = []

    def start(backends):
        front = "127.0.0.1:%d" % local.free_port()
        config = tmp_path / ("haproxy-%d.cfg" % len(started))
        config.write_text(HAPROXY_CONFIG.format(front=front, servers="\n".join(
            "    server replica%d %s" % (i, b) for i, b in enumerate(backends))))
        log = open(str(tmp_path / ("haproxy-%d.log" % len(started))), "wb")
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(config)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        started.append(proc)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(local.split_address(front), timeout=1).close()
                return front
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("haproxy did not start: %s" % (
                        tmp_path / ("haproxy-%d.log" % (len(started) - 1))).read_text())
                time.sleep(0.05)

    yield start
    for proc in started:
        local.stop_pid(proc.pid, proc=proc)


def _replicas(registry_factory, tmp_path, secrets=("shared-secret", "shared-secret")):
    storage = str(tmp_path / "shared-storage")
    return [registry_factory(storage_dir=storage, http_secret=s) for s in secrets]


def test_upload_sessions_cross_replicas_only_with_the_shared_secret(
        registry_factory, tmp_path):
    # What a balanced upload relies on: POST on one replica, PUT on another.
    first, same, other = _replicas(registry_factory, tmp_path,
                                   ("shared-secret", "shared-secret", "another-secret"))
    for replica, expected in ((same, 201), (other, 404)):
        data = os.urandom(2048)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        resp = requests.post(first.url + "/v2/ns/img/blobs/uploads/", timeout=10)
        assert resp.status_code == 202
        location = resp.headers["Location"].replace(first.address, replica.address)
        resp = requests.put(location + "&digest=" + digest, data=data, timeout=10)
        assert resp.status_code == expected, resp.text
        if expected == 404:
            assert "BLOB_UPLOAD_INVALID" in resp.text


def test_upload_through_balanced_replicas(registry_factory, haproxy, request_counter,
                                          skopeo, tmp_path):
    src = registry_factory()
    seeded = images.seed_kolla_set(src.url, images=images.KOLLA_IMAGES[:8], sizes="tiny",
                                   multiarch=["aodh-api"])
    replicas = _replicas(registry_factory, tmp_path)
    front = haproxy([r.address for r in replicas])
    counters = [request_counter(r) for r in replicas]
    path = str(tmp_path / "images.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({"container_images": [
            {"imagename": img.reference, "push_destination": front}
            for img in seeded.images.values()],
            "insecure_registries": [src.address, front]}, f)
    proc = openstack("overcloud", "container", "image", "upload", "--config-file", path,
                     "-f", "value", "-c", "Result")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["copied"] * len(seeded.images)
    # the balancer spread the upload over both replicas, sessions included
    for counter in counters:
        assert counter.count(method="POST", route="upload", status=202) > 0
        assert counter.count(method="PUT", route="upload", status=201) > 0
        assert counter.count(status="5xx") == 0
    routes = collections.Counter()
    for counter in counters:
        routes.update("%s %s" % (e.method, registry_log.route_of(e.path))
                      for e in counter.entries())
    assert routes["PUT upload"] == len(seeded.blobs)
    for replica in replicas:
        for img in seeded.images.values():
            ref = "%s:%s" % (img.repository, seeded.tag)
            assert skopeo.inspect(replica, ref, raw=True) == img.manifest
        assert faultproxy.incomplete_images(replica.url, [
            "%s:%s" % (img.repository, seeded.tag) for img in seeded.images.values()]) == []
