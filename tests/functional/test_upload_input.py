"""`image upload` with images files that cannot all be honoured, against
real docker-registry instances: conflicting destinations, and the summary
of many images failing for one reason."""
import json

import yaml

from osc_cli import openstack
from tripleo_containers.testing import images


def _images_file(path, entries, insecure=()):
    with open(path, "w") as f:
        yaml.safe_dump({"container_images": entries,
                        "insecure_registries": list(insecure)}, f)
    return str(path)


def _upload(*args):
    proc = openstack("overcloud", "container", "image", "upload", "-f", "json", *args)
    rows = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else None
    return proc, rows


def test_two_sources_for_one_destination_tag_are_refused_others_copied(
        registry_factory, request_counter, skopeo, tmp_path):
    a, b, dst = registry_factory(), registry_factory(), registry_factory()
    one = images.seed_kolla_set(a.url, images=["keystone", "cron"])
    other = images.seed_kolla_set(b.url, images=["keystone"], seed=3)
    keystone = one.images["keystone"]
    assert other.images["keystone"].digest != keystone.digest
    entries = [
        {"imagename": keystone.reference, "push_destination": dst.address},
        {"imagename": one.images["cron"].reference, "push_destination": dst.address},
        {"imagename": other.images["keystone"].reference, "push_destination": dst.address},
    ]
    path = _images_file(tmp_path / "images.yaml", entries,
                        [a.address, b.address, dst.address])
    counter = request_counter(dst)
    proc, rows = _upload("--config-file", path)
    assert proc.returncode == 1, proc.stderr
    assert [r["Result"] for r in rows] == ["failed", "copied", "failed"]
    target = "%s/%s:latest" % (dst.address, keystone.repository)
    conflict = [l for l in proc.stderr.splitlines() if l.startswith("failed:")]
    assert len(conflict) == 2
    for line in conflict:
        assert target in line
        assert "entry 1 (%s)" % keystone.reference in line
        assert "entry 3 (%s)" % other.images["keystone"].reference in line
    assert "2 of 3 images failed to copy" in proc.stderr
    # nothing of keystone reached the destination, cron did
    assert counter.count(path=r"/v2/%s/" % keystone.repository, method="PUT") == 0
    assert counter.count(path=r"/v2/%s/" % keystone.repository, method="POST") == 0
    cron = one.images["cron"]
    assert skopeo.inspect(dst, "%s:latest" % cron.repository)["Digest"] == cron.digest


def test_many_images_failing_for_one_reason_say_it_once(registry_factory, tmp_path):
    https_expected, plain, dst = registry_factory(), registry_factory(), registry_factory()
    names = ["keystone", "cron", "glance-api", "nova-api", "heat-api"]
    seeded = images.seed_kolla_set(https_expected.url, images=names)
    entries = [{"imagename": img.reference, "push_destination": dst.address}
               for img in seeded.images.values()]
    missing = "%s/tripleo/centos-binary-nope:latest" % plain.address
    entries.insert(2, {"imagename": missing, "push_destination": dst.address})
    # the source is plain HTTP but not marked insecure: every one of its
    # images fails the same TLS handshake
    path = _images_file(tmp_path / "images.yaml", entries, [plain.address, dst.address])
    proc, rows = _upload("--config-file", path)
    assert proc.returncode == 1
    assert [r["Result"] for r in rows] == ["failed"] * 6
    failed = [l for l in proc.stderr.splitlines() if l.startswith("failed: ")]
    assert len(failed) == 2, proc.stderr
    grouped = [l for l in failed if l.startswith("failed: 5 images: ")]
    assert len(grouped) == 1 and proc.stderr.count("TLS verification failed") == 1
    assert https_expected.address in grouped[0]
    assert grouped[0].endswith(", ".join(img.reference for img in seeded.images.values()))
    single = [l for l in failed if l not in grouped][0]
    assert single.startswith("failed: %s -> %s/" % (missing, dst.address))
    assert "not found" in single
    assert "6 of 6 images failed to copy" in proc.stderr
