"""One source, several destination registries (a central undercloud and edge
sites): every (image, destination) pair is copied, and the source serves each
unique blob and each manifest once whatever the number of destinations
(counted in its access log)."""
import json

import yaml

from osc_cli import openstack
from tripleo_containers.testing import faultproxy
from tripleo_containers.testing import images


def _write(path, entries, insecure):
    with open(str(path), "w") as f:
        yaml.safe_dump({"container_images": entries, "insecure_registries": insecure}, f)
    return str(path)


def _upload(*args):
    proc = openstack("overcloud", "container", "image", "upload", "-f", "json", *args)
    rows = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else None
    return proc, rows


def _check_copied(skopeo, seeded, registries):
    for reg in registries:
        for img in seeded.images.values():
            assert skopeo.inspect(reg, "%s:%s" % (img.repository, seeded.tag),
                                  raw=True) == img.manifest


def test_each_destination_gets_every_image_from_one_source_read(
        registry_factory, request_counter, skopeo, tmp_path):
    src = registry_factory()
    seeded = images.seed_kolla_set(src.url, images=images.KOLLA_IMAGES[:6], sizes="small",
                                   multiarch=["aodh-api"])
    sites = [registry_factory() for _ in range(3)]
    entries = [{"imagename": img.reference, "push_destination": site.address}
               for img in seeded.images.values() for site in sites]
    path = _write(tmp_path / "images.yaml", entries,
                  [src.address] + [s.address for s in sites])
    source = request_counter(src)
    counters = [request_counter(s) for s in sites]
    proc, rows = _upload("--config-file", path)
    assert proc.returncode == 0, proc.stderr
    assert len(rows) == len(entries)
    assert {r["Result"] for r in rows} == {"copied"}
    _check_copied(skopeo, seeded, sites)
    gets = source.entries(method="GET", route="blob")
    assert sorted(e.path.rsplit("/", 1)[1] for e in gets) == sorted(seeded.blobs)
    manifests = 1 + len(seeded.images["aodh-api"].children)
    assert source.count(method="GET", route="manifest") == len(seeded.images) - 1 + manifests
    # every site was written every blob once (an upload or a mount)
    for counter in counters:
        assert counter.count(method="PUT", route="upload", status=201) == len(seeded.blobs)
    assert sum(r["Bytes moved"] for r in rows) == 3 * seeded.unique_bytes

    source.reset()
    proc, rows = _upload("--config-file", path)
    assert proc.returncode == 0, proc.stderr
    assert {r["Result"] for r in rows} == {"already present"}
    assert source.count(method="GET", route="blob") == 0
    # one source HEAD per image, not one per (image, destination)
    assert source.count(method="HEAD", route="manifest") == len(seeded.images)


def test_push_destination_sends_every_entry_to_each_registry(
        registry_factory, request_counter, skopeo, tmp_path):
    src = registry_factory()
    seeded = images.seed_kolla_set(src.url, images=images.KOLLA_IMAGES[:3], sizes="tiny")
    named, first, second = registry_factory(), registry_factory(), registry_factory()
    path = _write(tmp_path / "images.yaml",
                  [{"imagename": img.reference, "push_destination": named.address}
                   for img in seeded.images.values()],
                  [src.address, named.address])
    untouched = request_counter(named)
    source = request_counter(src)
    proc, rows = _upload("--config-file", path, "--push-destination", first.address,
                         "--push-destination", second.address,
                         "--insecure-registry", first.address,
                         "--insecure-registry", second.address)
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["Destination"].split("/", 1)[0] for r in rows) == sorted(
        [first.address, second.address] * len(seeded.images))
    _check_copied(skopeo, seeded, [first, second])
    assert untouched.count() == 0
    assert source.count(method="GET", route="blob") == len(seeded.blobs)


def test_a_bad_push_destination_is_one_line(tmp_path):
    path = _write(tmp_path / "images.yaml", [{"imagename": "a.io/ns/x:1"}], [])
    proc, _ = _upload("--config-file", path, "--push-destination", "http://h:1/")
    assert proc.returncode != 0
    assert "--push-destination 'http://h:1/' is not a registry address" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_site_that_drops_its_uploads_gets_them_from_another_site(
        registry_factory, request_counter, skopeo, tmp_path):
    # The source is read once into all three sites at once; the site whose
    # first PUT of every blob is reset gets that blob again from a site
    # that has it, never from the source a second time.
    src = registry_factory()
    seeded = images.seed_kolla_set(src.url, images=images.KOLLA_IMAGES[:4], sizes="small")
    sites = [registry_factory() for _ in range(3)]
    rule = faultproxy.Rule("reset", methods=["PUT"], routes=["upload"])
    with faultproxy.FaultProxy(sites[2].address, rules=[rule], max_per_key=1) as flaky:
        addresses = [sites[0].address, sites[1].address, flaky.address]
        entries = [{"imagename": img.reference, "push_destination": a}
                   for img in seeded.images.values() for a in addresses]
        path = _write(tmp_path / "images.yaml", entries, [src.address] + addresses)
        source = request_counter(src)
        proc, rows = _upload("--config-file", path)
    assert proc.returncode == 0, proc.stderr
    assert {r["Result"] for r in rows} == {"copied"}
    assert flaky.counts["reset"] >= 1
    _check_copied(skopeo, seeded, sites)
    assert sorted(e.path.rsplit("/", 1)[1] for e in source.entries(
        method="GET", route="blob")) == sorted(seeded.blobs)
