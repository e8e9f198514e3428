"""A blob much larger than the rest is read as parallel ranged GETs (206 in
the source's access log), reassembled in order into one PUT whose digest the
destination accepts; a part cut short is read again from where it broke."""
import yaml

from osc_cli import openstack
from tripleo_containers.registry import ranged
from tripleo_containers.testing import faultproxy
from tripleo_containers.testing import images

SIZES = {"base": ranged.MIN_SIZE + ranged.PART // 2, "openstack-base": 64 << 10,
         "project": 16 << 10, "service": 4 << 10}


def _upload(tmp_path, seeded, source, dst):
    path = str(tmp_path / "images.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({"container_images": [
            {"imagename": source + img.reference[len(seeded.registry):],
             "push_destination": dst.address} for img in seeded.images.values()],
            "insecure_registries": [source, dst.address]}, f)
    return openstack("overcloud", "container", "image", "upload", "--config-file", path,
                     "-f", "value", "-c", "Result")


def _base_digest(seeded):
    return max(seeded.blobs, key=seeded.blobs.get)


def test_big_blob_read_in_ranges_lands_intact(registry_factory, request_counter, skopeo,
                                              tmp_path):
    src, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(src.url, images=["keystone", "glance-api"], sizes=SIZES)
    counter = request_counter(src)
    proc = _upload(tmp_path, seeded, src.address, dst)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["copied", "copied"]
    big = _base_digest(seeded)
    parts = -(-seeded.blobs[big] // ranged.PART)
    gets = counter.entries(method="GET", route="blob", path=big)
    assert [e.status for e in gets] == [206] * parts
    # the small blobs are still one plain GET each
    assert counter.count(method="GET", route="blob", status=200) == len(seeded.blobs) - 1
    for img in seeded.images.values():
        assert skopeo.inspect(dst, "%s:%s" % (img.repository, seeded.tag),
                              raw=True) == img.manifest


def test_a_part_cut_short_is_read_again_from_where_it_broke(
        registry_factory, request_counter, skopeo, tmp_path):
    src, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(src.url, images=["keystone"], sizes=SIZES)
    big = _base_digest(seeded)
    cut = []

    def decide(req):
        if req.method == "GET" and req.path.endswith(big) and not cut:
            cut.append(req)
            return "truncate"
        return None

    with faultproxy.FaultProxy(src.address, decide=decide) as proxy:
        counter = request_counter(dst)
        proc = _upload(tmp_path, seeded, proxy.address, dst)
    assert proc.returncode == 0, proc.stderr
    assert proxy.counts == {"truncate": 1}
    # one upload of the big blob: the break was mended inside the stream,
    # not by uploading the whole blob again
    puts = counter.entries(method="PUT", route="upload", status=201,
                           query=big.split(":")[1])
    assert len(puts) == 1
    assert counter.count(method="POST", route="upload") == len(seeded.blobs)
    assert counter.count(method="DELETE") == 0
    parts = -(-seeded.blobs[big] // ranged.PART)
    reads = [r for r in proxy.requests if r.method == "GET" and r.path.endswith(big)]
    assert [r.status for r in reads] == [206] * (parts + 1)
    img = seeded.images["keystone"]
    assert skopeo.inspect(dst, "%s:%s" % (img.repository, seeded.tag), raw=True) == \
        img.manifest
