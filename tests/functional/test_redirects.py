"""Blob redirects from a source registry, against a real docker-registry
behind haproxy (which answers blob GETs with a 307 to where we say):
https never silently becomes http, and a non-http(s) redirect is one line,
not retried."""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest
import yaml

from osc_cli import openstack
from tripleo_containers.registry import local
from tripleo_containers.testing import images

BLOB_GET = "{ method GET } { path_reg ^/v2/.+/blobs/sha256: }"


@pytest.fixture
def redirector(tmp_path, request):
    """``redirector(backend, location, tls=False)``: haproxy on a free
    loopback port forwarding to ``backend`` (host:port), except blob GETs,
    which get a 307 to ``location`` + the request path. Returns its host:port."""
    if shutil.which("haproxy") is None:
        if os.environ.get("TRIPLEO_CONTAINERS_REQUIRE_TOOLS"):
            pytest.fail("haproxy not installed (apt-get install haproxy)")
        pytest.skip("haproxy not installed (apt-get install haproxy)")
    started = []

    def start(backend, location, tls=False):
        port = local.free_port()
        bind = "127.0.0.1:%d" % port
        if tls:
            material = request.getfixturevalue("tls_material")
            pem = tmp_path / "haproxy.pem"
            pem.write_text(open(material.cert).read() + open(material.key).read())
            bind += " ssl crt %s" % pem
        cfg = tmp_path / ("haproxy-%d.cfg" % len(started))
        cfg.write_text(
            "global\n  maxconn 64\n"
            "defaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n"
            "  timeout server 30s\n"
            "frontend f\n  bind %s\n"
            "  http-request redirect location %s%%[path] code 307 if %s\n"
            "  default_backend b\n"
            "backend b\n  server r %s\n" % (bind, location, BLOB_GET, backend))
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(cfg)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, "haproxy exited (%s)" % cfg.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return "127.0.0.1:%d" % port
            except OSError:
                assert time.monotonic() < deadline, "haproxy did not listen"
                time.sleep(0.05)

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _upload(tmp_path, seeded, source, destination, insecure, *args):
    entries = [{"imagename": "%s/%s:latest" % (source, img.repository),
                "push_destination": destination} for img in seeded.images.values()]
    path = tmp_path / "images.yaml"
    path.write_text(yaml.safe_dump({"container_images": entries,
                                    "insecure_registries": list(insecure)}))
    proc = openstack("overcloud", "container", "image", "upload", "-f", "json",
                     "--config-file", path, *args)
    rows = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else None
    return proc, rows


def test_https_source_redirecting_blobs_to_http_is_refused_unless_insecure(
        registry_factory, redirector, request_counter, tls_material, skopeo, tmp_path):
    store, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(store.url, images=["cron"])
    source = redirector(store.address, "http://%s" % store.address, tls=True)
    store_counter = request_counter(store)
    proc, rows = _upload(tmp_path, seeded, source, dst.address, [dst.address],
                         "--ca-bundle", "%s=%s" % (source, tls_material.ca_cert))
    assert proc.returncode == 1
    assert [r["Result"] for r in rows] == ["failed"]
    line = [l for l in proc.stderr.splitlines() if l.startswith("failed: ")]
    assert len(line) == 1
    assert ("redirect from https://%s to http://%s refused: it downgrades HTTPS to "
            "plain HTTP" % (source, store.address)) in line[0]
    # nothing went to the plain-HTTP address, and no retry at the source
    assert store_counter.count(route="blob") == 0
    assert "Traceback" not in proc.stderr

    # the operator says the storage host is plain HTTP on purpose
    proc, rows = _upload(tmp_path, seeded, source, dst.address,
                         [dst.address, store.address],
                         "--ca-bundle", "%s=%s" % (source, tls_material.ca_cert))
    assert proc.returncode == 0, proc.stderr
    assert store_counter.count(route="blob", method="GET") == len(seeded.blobs)
    cron = seeded.images["cron"]
    assert skopeo.inspect(dst, "%s:latest" % cron.repository)["Digest"] == cron.digest


@pytest.mark.parametrize("location", ["ftp://127.0.0.1:1", "file://"])
def test_redirect_to_another_scheme_is_one_line_without_retry(
        registry_factory, redirector, tmp_path, location):
    store, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(store.url, images=["cron"])
    source = redirector(store.address, location)
    proc, rows = _upload(tmp_path, seeded, source, dst.address, [source, dst.address],
                         "--debug")
    assert proc.returncode == 1
    scheme = location.split(":", 1)[0]
    failed = [l for l in proc.stderr.splitlines() if l.startswith("failed: ")]
    assert len(failed) == 1 and "redirected to a %s:// URL" % scheme in failed[0]
    assert "AttributeError" not in proc.stderr and "URLSchemeUnknown" not in proc.stderr
    assert "retrying" not in proc.stderr
