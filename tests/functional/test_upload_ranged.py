"""A big blob whose stream is slow (a capped connection, made here by the
WAN proxy) is read as parallel ranged GETs (206 in the source's access log),
reassembled in order into one PUT whose digest the destination accepts; a
near source is read as one stream; a break is mended from where it broke."""
import yaml

from osc_cli import openstack
from tripleo_containers.registry import ranged
from tripleo_containers.testing import faultproxy
from tripleo_containers.testing import images
from tripleo_containers.testing import wanproxy

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


def test_slow_big_blob_read_in_ranges_lands_intact(registry_factory, request_counter,
                                                   skopeo, tmp_path):
    src, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(src.url, images=["keystone", "glance-api"], sizes=SIZES)
    counter = request_counter(src)
    # 4 MB/s per connection: slower than ranged.SLOW_RATE
    with wanproxy.WanProxy(src.address, rtt=0.002, conn_rate=4e6) as proxy:
        proc = _upload(tmp_path, seeded, proxy.address, dst)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["copied", "copied"]
    big = _base_digest(seeded)
    gets = counter.entries(method="GET", route="blob", path=big)
    # the first stream, then at least one part, all ranges
    assert len(gets) >= 2 and {e.status for e in gets} == {206}
    # the small blobs are still one plain GET each
    assert counter.count(method="GET", route="blob", status=200) == len(seeded.blobs) - 1
    for img in seeded.images.values():
        assert skopeo.inspect(dst, "%s:%s" % (img.repository, seeded.tag),
                              raw=True) == img.manifest


def test_a_near_source_is_read_as_one_stream(registry_factory, request_counter, tmp_path):
    src, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(src.url, images=["keystone"], sizes=SIZES)
    counter = request_counter(src)
    proc = _upload(tmp_path, seeded, src.address, dst)
    assert proc.returncode == 0, proc.stderr
    gets = counter.entries(method="GET", route="blob", path=_base_digest(seeded))
    assert [e.status for e in gets] == [206]


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
    reads = [r for r in proxy.requests if r.method == "GET" and r.path.endswith(big)]
    assert len(reads) >= 2 and {r.status for r in reads} == {206}
    img = seeded.images["keystone"]
    assert skopeo.inspect(dst, "%s:%s" % (img.repository, seeded.tag), raw=True) == \
        img.manifest
