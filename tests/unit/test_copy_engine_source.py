"""The copy engine with a source that is not a registry (as the Docker
daemon is): digests known up front, sizes only once a blob is read."""
import json
import threading

import pytest

from fake_registry import FakeRegistry, digest_of, lose_first_upload_put
from tripleo_containers import exceptions
from tripleo_containers.copy import engine
from tripleo_containers.registry import client as client_mod
from tripleo_containers.registry import errors, reference, transport

BASE = b"base-layer" * 5000
MID = b"mid-layer" * 3000
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar"


class Handle(object):
    def __init__(self, name):
        self.name = name

    def __str__(self):
        return self.name


class FakeSource(engine.Source):
    """Images as lists of blobs (config first); counts every blob read."""

    def __init__(self, images):
        self.images = images
        self.opened = []
        self.broken = set()
        self.lock = threading.Lock()

    def blobs(self, job):
        return dict((digest_of(b), None) for b in self.images[job.source.name])

    def open_blob(self, handle, digest, on_bytes, cancel):
        with self.lock:
            self.opened.append((handle.name, digest))
        data = [b for b in self.images[handle.name] if digest_of(b) == digest][0]
        if digest in self.broken:
            raise exceptions.Error("source: reading %s failed: broken pipe" % handle.name)

        class Body(object):
            def __len__(self):
                return len(data)

            def __iter__(self):
                for i in range(0, len(data), 4096):
                    if cancel.is_set():
                        raise errors.Cancelled("cancelled")
                    on_bytes(len(data[i:i + 4096]))
                    yield data[i:i + 4096]
        return Body(), len(data)

    def manifest(self, job, sizes):
        blobs = self.images[job.source.name]
        assert all(sizes[digest_of(b)] == len(b) for b in blobs), sizes
        doc = {"schemaVersion": 2, "mediaType": client_mod.DOCKER_MANIFEST,
               "config": {"mediaType": CONFIG_TYPE, "size": len(blobs[0]),
                          "digest": digest_of(blobs[0])},
               "layers": [{"mediaType": LAYER_TYPE, "size": len(b), "digest": digest_of(b)}
                          for b in blobs[1:]]}
        data = json.dumps(doc).encode()
        return client_mod.Manifest(data, client_mod.DOCKER_MANIFEST, digest_of(data))


@pytest.fixture
def dst():
    registry = FakeRegistry()
    yield registry
    registry.close()


def run(source, dst, names):
    tr = transport.Transport(insecure=[dst.address], retries=2, sleep=lambda s: None,
                             timeout=(5, 10))
    eng = engine.Engine(client_mod.Client(tr), jobs=2, meta_jobs=4, source=source)
    jobs = [engine.CopyJob(Handle(n), reference.parse("%s/%s:t" % (dst.address, n)))
            for n in names]
    results, plan = eng.run(jobs)
    return dict((r.source, r) for r in results), plan


def images():
    return {"ns/a": [b'{"config": "a"}', BASE, MID, b"own-a" * 100],
            "ns/b": [b'{"config": "b"}', BASE, MID, b"own-b" * 100]}


def test_unknown_sizes_present_blobs_never_read_shared_read_once_manifest_last(dst):
    source = FakeSource(images())
    # the destination has BASE already: HEAD gives its size, no read
    dst.add_blob("ns/a", BASE)
    dst.add_blob("ns/b", BASE)
    results, plan = run(source, dst, ["ns/a", "ns/b"])

    assert [(r.status, r.error) for r in results.values()] == [(engine.COPIED, None)] * 2
    read = [d for _, d in source.opened]
    assert digest_of(BASE) not in read
    # MID is shared: read once, mounted into the other repository
    assert sorted(read) == sorted(set(read)) and digest_of(MID) in read
    assert len(read) == 5 and plan.uploads == plan.unsized == 5
    assert plan.blobs_present == 2 and plan.bytes_to_move == 0
    assert len([r for r in dst.requests("POST") if "mount" in r.query]) == 1
    for name, blobs in images().items():
        data, _ = dst.manifests[name]["t"]
        doc = json.loads(data)
        assert [l["size"] for l in doc["layers"]] == [len(b) for b in blobs[1:]]
        assert results[name].digest == digest_of(data)
        put_at = [i for i, r in enumerate(dst.log) if r.method == "PUT"
                  and r.path == "/v2/%s/manifests/t" % name][0]
        landed = [i for i, r in enumerate(dst.log) if r.path.startswith(
            "/v2/%s/blobs/uploads/" % name) and (r.method == "PUT" or "mount" in r.query)]
        assert len(landed) == 3 and max(landed) < put_at
    assert sum(r.bytes_moved for r in results.values()) == sum(
        len(b) for b in set(images()["ns/a"][1:] + images()["ns/b"][1:]) if b != BASE) + \
        len(images()["ns/a"][0]) + len(images()["ns/b"][0])

    # a re-run reads nothing from the source and writes nothing
    source.opened[:] = []
    dst.log[:] = []
    again, _ = run(source, dst, ["ns/a", "ns/b"])
    assert [(r.status, r.bytes_moved) for r in again.values()] == [(engine.PRESENT, 0)] * 2
    assert source.opened == []
    assert not dst.requests("PUT") and not dst.requests("POST")


def test_source_failure_fails_its_image_alone_with_its_line(dst):
    source = FakeSource(images())
    source.broken.add(digest_of(b"own-a" * 100))
    results, _ = run(source, dst, ["ns/a", "ns/b"])
    assert results["ns/a"].status == engine.FAILED
    assert results["ns/a"].error == "source: reading ns/a failed: broken pipe"
    assert results["ns/b"].status == engine.COPIED
    # not a temporary error: read once, not retried
    assert source.opened.count(("ns/a", digest_of(b"own-a" * 100))) == 1
    assert "ns/a" not in dst.manifests


def test_lost_put_answer_still_gives_the_manifest_its_size(dst):
    source = FakeSource({"ns/a": images()["ns/a"]})
    dropped = []
    dst.faults.append(lose_first_upload_put(dropped))
    results, _ = run(source, dst, ["ns/a"])
    assert (results["ns/a"].status, results["ns/a"].error) == (engine.COPIED, None)
    # the blob had landed: found by a HEAD, not read or sent again
    lost = dropped[0].query["digest"]
    assert [d for _, d in source.opened].count(lost) == 1
    assert len(json.loads(dst.manifests["ns/a"]["t"][0])["layers"]) == 3


def test_two_destinations_read_the_source_once(dst):
    other = FakeRegistry()
    try:
        source = FakeSource({"ns/a": images()["ns/a"]})
        tr = transport.Transport(insecure=[dst.address, other.address], retries=2,
                                 sleep=lambda s: None, timeout=(5, 10))
        eng = engine.Engine(client_mod.Client(tr), jobs=2, meta_jobs=4, source=source)
        jobs = [engine.CopyJob(Handle("ns/a"), reference.parse("%s/ns/a:t" % r.address))
                for r in (dst, other)]
        results, _ = eng.run(jobs)
        assert [(r.status, r.error) for r in results] == [(engine.COPIED, None)] * 2
        # every blob read from the source once; the second site got it from the first
        assert sorted(d for _, d in source.opened) == sorted(
            digest_of(b) for b in images()["ns/a"])
        assert dst.manifests["ns/a"]["t"][0] == other.manifests["ns/a"]["t"][0]
    finally:
        other.close()
