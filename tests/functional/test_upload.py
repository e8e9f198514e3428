"""`openstack overcloud container image upload` against real docker-registry
instances: digests preserved (cross-checked with skopeo), each unique blob
uploaded once (the destination's access log), re-runs free, faults reported."""
import collections
import json
import subprocess
import sys

import yaml

from osc_cli import openstack
from tripleo_containers.testing import images


def _images_file(path, entries, insecure=()):
    with open(path, "w") as f:
        yaml.safe_dump({"container_images": entries,
                        "insecure_registries": list(insecure)}, f)
    return str(path)


def _entries(seeded, destination):
    return [{"imagename": img.reference, "push_destination": destination}
            for img in seeded.images.values()]


def _upload(*args):
    proc = openstack("overcloud", "container", "image", "upload", "-f", "json", *args)
    rows = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else None
    return proc, rows


def _seed_mixed(src):
    docker = images.seed_kolla_set(
        src.url, namespace="tripleo", prefix="centos-binary-", tag="t1",
        images=["keystone", "nova-api", "nova-compute", "mariadb"],
        multiarch=["nova-compute"], fmt="docker", sizes="small")
    oci = images.seed_kolla_set(
        src.url, namespace="ocins", prefix="", tag="t1",
        images=["glance-api", "cinder-api"], fmt="oci", sizes="small", seed=7)
    return docker, oci


def test_copy_docker_oci_and_list_once_each_blob_then_rerun_free(
        registry_factory, request_counter, skopeo, tmp_path):
    src, dst = registry_factory(), registry_factory()
    docker, oci = _seed_mixed(src)
    seeded = list(docker.images.values()) + list(oci.images.values())
    unique = dict(docker.blobs)
    unique.update(oci.blobs)
    path = _images_file(tmp_path / "images.yaml",
                        _entries(docker, dst.address) + _entries(oci, dst.address),
                        insecure=[src.address, dst.address])
    counter = request_counter(dst)
    proc, rows = _upload("--config-file", path)
    assert proc.returncode == 0, proc.stderr
    by_dest = dict((r["Destination"], r) for r in rows)
    for img in seeded:
        row = by_dest["%s/%s:t1" % (dst.address, img.repository)]
        assert row["Result"] == "copied" and row["Digest"] == img.digest
        info = skopeo.inspect(dst, "%s:t1" % img.repository)
        assert info["Digest"] == img.digest
        assert skopeo.inspect(dst, "%s:t1" % img.repository, raw=True) == img.manifest
    # nova-compute is a manifest list: both children are there by digest
    for child in docker.images["nova-compute"].children.values():
        assert skopeo.inspect(dst, "%s@%s" % (child.repository, child.digest), raw=True) == \
            child.manifest
    # each unique blob went over the wire exactly once; the rest were mounts
    puts = counter.entries(method="PUT", route="upload", status=201)
    per_digest = collections.Counter(e.query for e in puts)
    assert len(puts) == len(unique) and max(per_digest.values()) == 1
    assert sum(r["Bytes moved"] for r in rows) == sum(unique.values())
    assert counter.count(status="5xx") == 0
    assert counter.count(method="PUT", route="manifest", status=201) == len(seeded) + 2

    counter.reset()
    src_counter = request_counter(src)
    proc, rows = _upload("--config-file", path)
    assert proc.returncode == 0, proc.stderr
    assert {r["Result"] for r in rows} == {"already present"}
    assert counter.count(method="PUT") == 0 and counter.count(method="POST") == 0
    assert counter.count(method="HEAD", route="manifest") == len(seeded)
    assert counter.count() == len(seeded) + 1  # + the one /v2/ ping
    assert src_counter.count(method="HEAD", route="manifest") == len(seeded)
    assert src_counter.count(method="GET", route="manifest") == 0


def test_one_missing_image_fails_others_copied(registry_factory, tmp_path, skopeo):
    src, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(src.url, images=["keystone", "glance-api", "cron"])
    entries = _entries(seeded, dst.address)
    entries.insert(1, {"imagename": "%s/tripleo/centos-binary-nope:latest" % src.address,
                       "push_destination": dst.address})
    path = _images_file(tmp_path / "images.yaml", entries, [src.address, dst.address])
    proc, rows = _upload("--config-file", path)
    assert proc.returncode == 1
    assert "1 of 4 images failed to copy" in proc.stderr
    assert "centos-binary-nope:latest not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert [r["Result"] for r in rows] == ["copied", "failed", "copied", "copied"]
    for img in seeded.images.values():
        assert skopeo.inspect(dst, "%s:latest" % img.repository)["Digest"] == img.digest


def test_tls_htpasswd_destination_with_ca_and_credentials(
        registry_factory, tmp_path, skopeo):
    src = registry_factory()
    dst = registry_factory(tls=True, auth=True)
    seeded = images.seed_kolla_set(src.url, images=["keystone", "cron"])
    path = _images_file(tmp_path / "images.yaml", _entries(seeded, dst.address),
                        [src.address])
    creds = tmp_path / "creds.yaml"
    creds.write_text(yaml.safe_dump({dst.address: {dst.username: dst.password}}))
    bad = tmp_path / "bad-creds.yaml"
    bad.write_text(yaml.safe_dump({dst.address: {dst.username: "not-the-pass"}}))

    proc, _ = _upload("--config-file", path, "--registry-credentials", str(creds))
    assert proc.returncode == 1
    assert "--ca-bundle %s=FILE" % dst.address in proc.stderr
    assert "2 of 2 images failed" in proc.stderr

    proc, _ = _upload("--config-file", path, "--registry-credentials", str(bad),
                      "--ca-bundle", "%s=%s" % (dst.address, dst.ca_cert))
    assert proc.returncode == 1
    assert "registry %s, credentials from: %s" % (dst.address, bad) in proc.stderr
    assert "not-the-pass" not in proc.stderr + proc.stdout

    proc, rows = _upload("--config-file", path, "--registry-credentials", str(creds),
                         "--ca-bundle", "%s=%s" % (dst.address, dst.ca_cert))
    assert proc.returncode == 0, proc.stderr
    assert dst.password not in proc.stderr + proc.stdout
    for img in seeded.images.values():
        assert skopeo.inspect(dst, "%s:latest" % img.repository)["Digest"] == img.digest

    # docker config.json is read too (no explicit file)
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    import base64
    auth = base64.b64encode(("%s:%s" % (dst.username, dst.password)).encode()).decode()
    (home / ".docker" / "config.json").write_text(json.dumps(
        {"auths": {dst.address: {"auth": auth}}}))
    proc = openstack("overcloud", "container", "image", "upload", "-f", "json",
                     "--config-file", path, "--ca-bundle", str(dst.ca_cert),
                     env={"HOME": str(home), "DOCKER_CONFIG": str(home / ".docker"),
                          "REGISTRY_AUTH_FILE": "", "XDG_RUNTIME_DIR": ""})
    assert proc.returncode == 0, proc.stderr
    assert {r["Result"] for r in json.loads(proc.stdout)} == {"already present"}


def test_pull_through_cache_destination_is_reported_read_only(registry_factory, tmp_path):
    src = registry_factory()
    upstream = registry_factory()
    mirror = registry_factory(mirror_url=upstream.url)
    seeded = images.seed_kolla_set(src.url, images=["cron"])
    path = _images_file(tmp_path / "images.yaml", _entries(seeded, mirror.address),
                        [src.address, mirror.address])
    proc, rows = _upload("--config-file", path)
    assert proc.returncode == 1
    assert "read-only mirror or pull-through cache" in proc.stderr
    assert rows[0]["Result"] == "failed"


def test_dry_run_writes_nothing_and_tells_the_plan(
        registry_factory, request_counter, tmp_path):
    src, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(src.url, images=["keystone", "glance-api", "cron"])
    path = _images_file(tmp_path / "images.yaml", _entries(seeded, dst.address),
                        [src.address, dst.address])
    counter = request_counter(dst)
    proc, rows = _upload("--config-file", path, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert {r["Result"] for r in rows} == {"would copy"}
    assert counter.count(method="PUT") == counter.count(method="POST") == 0
    assert "%d unique blobs" % len(seeded.blobs) in proc.stderr
    assert sum(r["Bytes moved"] for r in rows) == seeded.unique_bytes


def test_malformed_images_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("container_images:\n  - imagename: [x\n")
    proc = openstack("overcloud", "container", "image", "upload", "--config-file", str(bad))
    assert proc.returncode == 1
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_large_layer_memory_stays_flat(registry_factory, tmp_path):
    """A 256 MiB layer is streamed: the copying process grows by a few
    buffers, not by the blob. Peak RSS of the CLI is compared with a run
    that copies a tiny image (same interpreter, same imports)."""
    src, dst = registry_factory(), registry_factory()
    big = images.seed_kolla_set(
        src.url, namespace="big", images=["cron"],
        sizes={"base": 256 << 20, "openstack-base": 1024, "project": 1024, "service": 1024})
    small = images.seed_kolla_set(src.url, namespace="small", images=["cron"])

    def peak_rss_kib(seeded, name):
        path = _images_file(tmp_path / ("%s.yaml" % name), _entries(seeded, dst.address),
                            [src.address, dst.address])
        # VmHWM of the CLI process itself, read at exit: rusage of a child
        # would inherit this (large) test process's peak across fork/exec.
        wrapper = (
            "import atexit, sys\n"
            "def hwm():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM'):\n"
            "            sys.stderr.write('PEAK %s\\n' % line.split()[1])\n"
            "atexit.register(hwm)\n"
            "from openstackclient.shell import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
        proc = subprocess.run(
            [sys.executable, "-c", wrapper, "overcloud", "container", "image", "upload",
             "--config-file", path], capture_output=True, text=True, timeout=300,
            stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr
        assert "copied" in proc.stdout
        return int(proc.stderr.rsplit("PEAK ", 1)[1].split()[0])

    baseline = peak_rss_kib(small, "small")
    peak = peak_rss_kib(big, "big")
    print("peak RSS KiB: tiny %d, 256 MiB layer %d" % (baseline, peak))
    assert peak - baseline < 48 * 1024, (baseline, peak)
