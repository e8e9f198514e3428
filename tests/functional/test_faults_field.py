"""`container image upload` as operators hit it in the field (issue 12): a
trickling source, Ctrl-C, concurrent runs, a damaged destination, a full
disk. Real docker-registry instances, the real CLI in a subprocess; the
fault proxy only where a fault has to be made."""
import glob
import json
import os
import signal
import subprocess
import time

import pytest
import yaml

from osc_cli import OPENSTACK, openstack
from test_faults import assert_destination_complete
from tripleo_containers.testing import faultproxy
from tripleo_containers.testing import images

NAMES = ["keystone", "nova-api", "mariadb", "glance-api"]


def seed(reg, names=NAMES, sizes="tiny", seed_=5):
    return images.seed_kolla_set(reg.url, "tripleo", "centos-binary-", "t1",
                                 images=names, sizes=sizes, seed=seed_)


def images_file(path, seeded, src_address, dst_address, names=None):
    entries = [{"imagename": "%s/%s:t1" % (src_address, img.repository),
                "push_destination": dst_address}
               for name, img in seeded.images.items() if names is None or name in names]
    with open(str(path), "w") as f:
        yaml.safe_dump({"container_images": entries,
                        "insecure_registries": [src_address, dst_address]}, f)
    return str(path)


def upload(path, *extra, timeout=120):
    proc = openstack("overcloud", "container", "image", "upload", "-f", "json",
                     "--config-file", path, *extra, timeout=timeout)
    rows = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else []
    return proc, dict((r["Image"].split("/", 1)[1], r) for r in rows)


def open_sessions(reg):
    """Data of upload sessions the registry still holds. (A cancel that
    races the registry's handling of the PUT it cut off can leave that
    session's few-hundred-byte hash state behind; its data is gone.)"""
    return glob.glob(os.path.join(reg.storage_dir, "docker/registry/v2/repositories",
                                  "*", "*", "_uploads", "*", "data"))


def test_trickling_source_fails_its_images_as_stalled_and_the_rest_finish(
        registry_factory, proxies, skopeo, tmp_path):
    src, dst = registry_factory(), registry_factory()
    seeded = seed(src)
    slow_blob = seeded.images["keystone"]            # its config: 1 byte / 0.4 s
    slow_manifest = seeded.images["mariadb"]         # its manifest body likewise

    def decide(req):
        if req.method != "GET":
            return None
        if req.path.endswith("/blobs/" + slow_blob.config_digest):
            return "trickle"
        if req.path == "/v2/%s/manifests/t1" % slow_manifest.repository:
            return "trickle"
        return None
    proxy = proxies(src, decide=decide, trickle_seconds=0.4, hang_seconds=120)
    path = images_file(tmp_path / "images.yaml", seeded, proxy.address, dst.address)
    started = time.monotonic()
    proc, rows = upload(path, "--timeout", "2", timeout=100)
    faultproxy.record("field", case="trickle 2.5 B/s, --timeout 2",
                      seconds=round(time.monotonic() - started, 1))
    assert proc.returncode == 1, proc.stderr
    assert "2 of 4 images failed to copy" in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("failed: ")]
    assert len(lines) == 2
    blob_line = [l for l in lines if slow_blob.repository in l.split(" -> ")[0]][0]
    assert "stalled" in blob_line and "/blobs/" + slow_blob.config_digest in blob_line
    manifest_line = [l for l in lines if slow_manifest.repository in l.split(" -> ")[0]][0]
    assert "stalled" in manifest_line and "/manifests/t1" in manifest_line
    assert "Traceback" not in proc.stderr
    for name in ("nova-api", "glance-api"):
        assert rows["%s:t1" % seeded.images[name].repository]["Result"] == "copied"
    # the upload session of the stalled blob was cancelled, not left to hold space
    assert open_sessions(dst) == []
    # the stalled transfers were each tried once: a stall is not retried
    assert len(proxy.faulted("trickle")) == 2


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _start_upload(path, *extra):
    return subprocess.Popen(
        [OPENSTACK, "overcloud", "container", "image", "upload", "-f", "json",
         "--config-file", path] + list(extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True)


def _finish(proc, timeout=30):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        raise AssertionError("upload still running %d s after the signal:\n%s"
                             % (timeout, err))
    return proc.returncode, out, err


def _interrupt(proc, ready, *signals, pause=0.3, timeout=30):
    """Once ``ready()`` holds, send ``signals`` (``pause`` s apart) to the
    upload and wait for it: (exit code, stdout, stderr, seconds from the
    first signal). The upload is killed if anything fails on the way."""
    try:
        assert _wait_for(ready)
        for i, signum in enumerate(signals or (signal.SIGINT,)):
            if i:
                time.sleep(pause)
            else:
                signalled = time.monotonic()
            proc.send_signal(signum)
        code, out, err = _finish(proc, timeout=timeout)
        return code, out, err, time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_stops_cancels_sessions_and_a_rerun_finishes(
        registry_factory, proxies, request_counter, skopeo, tmp_path, signum):
    src, dst = registry_factory(), registry_factory()
    seeded = seed(src, sizes="small")
    counter = request_counter(dst)
    slow = {"on": True}
    # every blob GET trickles: the run is busy with its uploads when signalled
    proxy = proxies(src, trickle_seconds=0.2, hang_seconds=120, decide=lambda req: (
        "trickle" if slow["on"] and req.method == "GET" and req.route == "blob" else None))
    path = images_file(tmp_path / "images.yaml", seeded, proxy.address, dst.address)
    proc = _start_upload(path, "--timeout", "60")
    code, out, err, seconds = _interrupt(
        proc, lambda: len(proxy.faulted("trickle")) >= 2, signum)
    faultproxy.record("field", case="signal %d" % signum, seconds=round(seconds, 1))
    assert code == 130, err
    assert "interrupted: 0 of 4 images copied; run the same command again to finish" in err
    assert "Traceback" not in err and "cannot schedule" not in err
    assert "failed unexpectedly" not in err
    # its upload sessions were deleted at the destination
    deletes = counter.count(method="DELETE", route="upload")
    assert deletes >= 2
    assert open_sessions(dst) == []
    slow["on"] = False
    proc2, rows = upload(path)
    assert proc2.returncode == 0, proc2.stderr
    assert_destination_complete(dst, seeded, skopeo)


def test_second_sigint_exits_at_once(registry_factory, proxies, tmp_path):
    src, dst = registry_factory(), registry_factory()
    seeded = seed(src)
    proxy = proxies(src, hang_seconds=120, decide=lambda req: (
        "hang" if req.route == "blob" else None))
    # the destination hangs too: the first signal's cleanup has to wait
    dst_proxy = proxies(dst, hang_seconds=120, decide=lambda req: (
        "hang" if req.method == "DELETE" else None))
    path = images_file(tmp_path / "images.yaml", seeded, proxy.address, dst_proxy.address)
    proc = _start_upload(path)
    code, out, err, _ = _interrupt(proc, lambda: len(proxy.faulted("hang")) >= 1,
                                   signal.SIGINT, signal.SIGINT, timeout=10)
    assert code == 130 and "Traceback" not in err


def test_concurrent_overlapping_runs_all_succeed(registry_factory, skopeo, tmp_path):
    """Four runs of 22 of the same 24 images into one registry. Before the
    fix every round of 3 tried failed an image with MANIFEST_BLOB_UNKNOWN.
    A likely cause: distribution 2.8's filesystem driver rewrites a blob
    link in place (truncate, then write; later versions write a temporary
    file and rename it), so a manifest PUT that verifies its blobs while
    another run mounts one of them can read an empty link."""
    src = registry_factory()
    names = images.DEFAULT_IMAGES[:24]
    seeded = seed(src, names=names)
    for round_ in range(2):
        dst = registry_factory()
        files = []
        for i in range(4):
            chosen = [names[(i * 2 + k) % len(names)] for k in range(len(names) - 2)]
            files.append(images_file(tmp_path / ("images-%d-%d.yaml" % (round_, i)),
                                     seeded, src.address, dst.address, chosen))
        started = time.monotonic()
        procs = [_start_upload(f) for f in files]
        outcomes = [_finish(p, timeout=240) for p in procs]
        faultproxy.record("field", case="4 concurrent runs", round=round_,
                          codes=[o[0] for o in outcomes],
                          seconds=round(time.monotonic() - started, 1))
        for code, out, err in outcomes:
            assert code == 0, err
        assert_destination_complete(dst, seeded, skopeo)


def test_verify_finds_and_repairs_a_deleted_layer(registry_factory, skopeo, tmp_path):
    src = registry_factory()
    dst = registry_factory(delete_enabled=True)  # no blob descriptor cache
    seeded = seed(src)
    path = images_file(tmp_path / "images.yaml", seeded, src.address, dst.address)
    proc, _ = upload(path)
    assert proc.returncode == 0, proc.stderr
    victim = seeded.images["keystone"]
    layer = victim.layers[-1]  # its own top layer
    data = os.path.join(dst.storage_dir, "docker/registry/v2/blobs/sha256",
                        layer[7:9], layer[7:], "data")
    os.remove(data)
    assert faultproxy.incomplete_images(dst.url, [victim.repository + ":t1"])

    proc, rows = upload(path)
    assert proc.returncode == 0
    assert rows[victim.repository + ":t1"]["Result"] == "already present"

    proc, rows = upload(path, "--verify-blobs", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert rows[victim.repository + ":t1"]["Result"] == "would repair"
    assert not os.path.exists(data)

    proc, rows = upload(path, "--verify-blobs")
    assert proc.returncode == 0, proc.stderr
    assert rows[victim.repository + ":t1"]["Result"] == "repaired"
    assert "total: 0 copied, 3 already present, 1 repaired, 0 failed" in proc.stderr
    others = [r["Result"] for k, r in rows.items() if k != victim.repository + ":t1"]
    assert others == ["already present"] * 3
    assert_destination_complete(dst, seeded, skopeo)
    pulled = tmp_path / "pulled"
    done = skopeo.run("copy", "--retry-times", "0", "--src-tls-verify=false",
                      skopeo.ref(dst, victim.repository + ":t1"), "dir:%s" % pulled)
    assert done.returncode == 0, done.stderr
    assert os.path.getsize(str(pulled / layer[7:])) > 0


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.fail("cannot mount a tmpfs (run as root): %s" % done.stderr)
    yield str(mount)
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def test_full_destination_disk_fails_fast_with_the_cause_and_frees_sessions(
        registry_factory, request_counter, small_disk, tmp_path):
    src = registry_factory()
    dst = registry_factory(storage_dir=os.path.join(small_disk, "storage"))
    # a base layer bigger than the 1 MiB disk, the other blobs small
    seeded = seed(src, sizes={"base": 1536 << 10, "openstack-base": 64 << 10,
                              "project": 16 << 10, "service": 4 << 10})
    counter = request_counter(dst)
    path = images_file(tmp_path / "images.yaml", seeded, src.address, dst.address)
    started = time.monotonic()
    proc, rows = upload(path, timeout=100)
    faultproxy.record("field", case="full disk", seconds=round(time.monotonic() - started, 1),
                      failed_puts=counter.count(method="PUT", route="upload", status=500),
                      sessions_left=len(open_sessions(dst)),
                      deletes=counter.count(method="DELETE", route="upload"))
    assert proc.returncode == 1
    lines = [l for l in proc.stderr.splitlines() if l.startswith("failed: ")]
    assert lines
    assert all("no space left on device" in l and "failed to store the data" in l
               for l in lines), lines
    assert "gave up after retries" not in proc.stderr
    # no blob was retried: one failed PUT at most per unique blob
    failed_puts = counter.count(method="PUT", route="upload", status=500)
    assert 1 <= failed_puts <= len(seeded.blobs)
    # every session was cancelled; distribution 2.8 refuses (404
    # BLOB_UPLOAD_INVALID) to cancel one whose PUT wrote part of its data
    # before failing, so those (one per failed PUT, no more) stay until the
    # registry purges them
    assert counter.count(method="DELETE", route="upload") >= failed_puts
    assert len(open_sessions(dst)) <= failed_puts


def test_a_5xx_storm_on_writes_stops_retries(registry_factory, proxies, tmp_path):
    src, dst = registry_factory(), registry_factory()
    seeded = seed(src)
    proxy = proxies(dst, decide=lambda req: (
        "500" if req.method in ("POST", "PUT", "PATCH") else None))
    path = images_file(tmp_path / "images.yaml", seeded, src.address, proxy.address)
    started = time.monotonic()
    proc, rows = upload(path, timeout=100)
    faultproxy.record("field", case="500 to every write", seconds=round(
        time.monotonic() - started, 1), writes=len(
            [r for r in proxy.requests if r.method in ("POST", "PUT")]))
    assert proc.returncode == 1
    assert "4 of 4 images failed to copy" in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.startswith("failed: ")]
    assert all("failed to store the data" in l for l in lines), lines
    assert "not retrying writes" in proc.stderr
    writes = [r for r in proxy.requests if r.method in ("POST", "PUT")]
    # the first few are retried, then each remaining blob is tried once
    assert len(writes) <= faultproxy_circuit() + len(seeded.blobs)


def faultproxy_circuit():
    from tripleo_containers.registry import transport
    return transport.WRITE_CIRCUIT
