"""The copy engine against two in-process fakes: plan, order, faults."""
import json

import pytest

from fake_registry import (DOCKER_LIST, FakeRegistry, cancel_while_held, digest_of,
                           lose_first_upload_put)
from tripleo_containers.copy import engine
from tripleo_containers.registry import client as client_mod
from tripleo_containers.registry import reference, transport

BASE = b"base-layer" * 5000
MID = b"mid-layer" * 3000


@pytest.fixture
def pair():
    src, dst = FakeRegistry(), FakeRegistry()
    yield src, dst
    src.close()
    dst.close()


def run(src, dst, names, dry_run=False, jobs=2, progress=None):
    tr = transport.Transport(insecure=[src.address, dst.address], retries=2,
                             sleep=lambda s: None, timeout=(5, 10))
    eng = engine.Engine(client_mod.Client(tr), jobs=jobs, meta_jobs=4,
                        progress=progress)
    jobs_ = [engine.CopyJob(reference.parse("%s/%s" % (src.address, n)),
                            reference.parse("%s/%s" % (dst.address, n))) for n in names]
    results, plan = eng.run(jobs_, dry_run=dry_run)
    return dict((r.destination.split("/", 1)[1], r) for r in results), plan


def seed(src, n=3):
    names = []
    for i in range(n):
        src.add_image("ns/img%d" % i, "t", [BASE, MID, b"own-%d" % i * 100])
        names.append("ns/img%d:t" % i)
    return names


def test_each_unique_blob_uploaded_once_then_mounted_and_manifests_last(pair):
    src, dst = pair
    names = seed(src)
    # one upload at a time, so that "biggest first" is the order they land in
    results, plan = run(src, dst, names, jobs=1)
    assert all(r.status == engine.COPIED for r in results.values())
    # 2 shared layers + 3 own layers + 3 configs
    assert plan.unique_blobs == 8 and plan.uploads == 8
    assert plan.mounts == 4 and plan.bytes_to_move == sum(
        len(src.blobs[d]) for d in src.blobs)
    puts = [r for r in dst.requests("PUT") if "/blobs/uploads/" in r.path]
    assert sorted(r.query["digest"] for r in puts) == sorted(src.blobs)
    mounts = [r for r in dst.requests("POST") if "mount" in r.query]
    assert len(mounts) == 4
    assert sum(r.bytes_moved for r in results.values()) == plan.bytes_to_move
    # every manifest PUT comes after all of its blobs landed in its repo
    seq = dst.log
    for name in names:
        repo = name.split(":")[0]
        put_at = [i for i, r in enumerate(seq) if r.method == "PUT"
                  and r.path == "/v2/%s/manifests/t" % repo][0]
        landed = [i for i, r in enumerate(seq) if r.path.startswith("/v2/%s/blobs/uploads/" % repo)
                  and (r.method == "PUT" or "mount" in r.query)]
        assert len(landed) == 4 and max(landed) < put_at
        assert dst.manifests[repo]["t"][0] == src.manifests[repo]["t"][0]
    # biggest blob first
    assert puts[0].query["digest"] == digest_of(BASE)
    # the destination had no tag: each source manifest is read with one GET,
    # without a HEAD before it
    assert sorted(r for r in src.sequence() if "/manifests/" in r) == [
        "GET /v2/ns/img%d/manifests/t" % i for i in range(3)]


def test_rerun_is_one_manifest_head_per_image_at_destination(pair):
    src, dst = pair
    names = seed(src)
    run(src, dst, names)
    dst.log[:] = []
    src.log[:] = []
    results, plan = run(src, dst, names)
    assert all(r.status == engine.PRESENT for r in results.values())
    assert sorted(dst.sequence()) == sorted(
        ["GET /v2/"] + ["HEAD /v2/ns/img%d/manifests/t" % i for i in range(3)])
    assert len(src.requests("HEAD")) == 3 and not src.requests("GET", "/manifests/")


def test_blobs_already_present_are_skipped_and_dry_run_writes_nothing(pair):
    src, dst = pair
    names = seed(src)
    dst.add_blob("ns/img0", BASE)
    results, plan = run(src, dst, names, dry_run=True)
    assert all(r.status == engine.WOULD_COPY for r in results.values())
    assert plan.blobs_present == 1 and plan.uploads == 7 and plan.mounts == 4
    assert plan.bytes_to_move == sum(len(b) for d, b in src.blobs.items() if b != BASE)
    assert not dst.requests("PUT") and not dst.requests("POST")
    results, plan = run(src, dst, names)
    puts = [r.query["digest"] for r in dst.requests("PUT") if "/uploads/" in r.path]
    assert digest_of(BASE) not in puts
    mounted = [r for r in dst.requests("POST") if r.query.get("mount") == digest_of(BASE)]
    assert sorted(r.query["from"] for r in mounted) == ["ns/img0", "ns/img0"]


def test_manifest_list_children_by_digest_then_list_by_tag(pair):
    src, dst = pair
    children = []
    for arch in ("amd64", "arm64"):
        data = src.add_image("ns/multi", None, [BASE, arch.encode() * 50])
        children.append({"mediaType": client_mod.DOCKER_MANIFEST, "size": len(data),
                         "digest": digest_of(data), "platform": {"architecture": arch}})
    top = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST,
                      "manifests": children}).encode()
    src.add_manifest("ns/multi", "t", top, DOCKER_LIST)
    results, _ = run(src, dst, ["ns/multi:t"])
    assert results["ns/multi:t"].status == engine.COPIED
    assert results["ns/multi:t"].digest == digest_of(top)
    puts = [r.path for r in dst.requests("PUT") if "/manifests/" in r.path]
    assert sorted(puts[:2]) == sorted("/v2/ns/multi/manifests/%s" % c["digest"] for c in children)
    assert puts[2] == "/v2/ns/multi/manifests/t"
    assert dst.manifests["ns/multi"]["t"] == (top, DOCKER_LIST)


def test_missing_image_fails_alone(pair):
    src, dst = pair
    names = seed(src, 2) + ["ns/missing:t"]
    results, plan = run(src, dst, names)
    assert results["ns/missing:t"].status == engine.FAILED
    assert "ns/missing:t not found" in results["ns/missing:t"].error
    assert results["ns/img0:t"].status == results["ns/img1:t"].status == engine.COPIED
    assert plan.images_failed == 1


def test_lost_put_response_is_detected_by_head_and_not_reuploaded(pair):
    src, dst = pair
    src.add_image("ns/a", "t", [BASE])
    dropped = []
    dst.faults.append(lose_first_upload_put(dropped))
    results, _ = run(src, dst, ["ns/a:t"], jobs=1)
    assert results["ns/a:t"].status == engine.COPIED
    digest = dropped[0].query["digest"]
    uploads = [r for r in dst.requests("PUT") if "/uploads/" in r.path]
    assert [r.query["digest"] for r in uploads].count(digest) == 1
    heads = [i for i, r in enumerate(dst.log)
             if r.method == "HEAD" and r.path.endswith("/blobs/" + digest)]
    assert len(heads) == 2  # the plan's HEAD, and the HEAD after the lost response


def test_whole_upload_retried_after_transient_put_failure(pair):
    src, dst = pair
    src.add_image("ns/a", "t", [BASE])
    failed = []

    def fail_first_put(req):
        if req.method == "PUT" and "/uploads/" in req.path and not failed:
            failed.append(req)
            return 500, {}, b""
    dst.faults.append(fail_first_put)
    results, _ = run(src, dst, ["ns/a:t"], jobs=1)
    assert results["ns/a:t"].status == engine.COPIED
    digest = failed[0].query["digest"]
    blob_gets = [r for r in src.requests("GET") if r.path.endswith("/blobs/" + digest)]
    assert len(blob_gets) == 2  # a fresh source stream for the second attempt
    assert len([r for r in dst.requests("POST") if not r.query]) >= 3


def test_corrupt_source_blob_fails_image_without_pushing_it(pair):
    src, dst = pair
    names = seed(src, 2)
    src.blobs[digest_of(MID)] = b"X" * len(MID)
    results, plan = run(src, dst, names)
    assert all(r.status == engine.FAILED for r in results.values())
    assert all("hashing to" in r.error for r in results.values())
    assert not [r for r in dst.requests("PUT") if "/manifests/" in r.path]


def test_progress_callbacks(pair):
    src, dst = pair
    names = seed(src, 2)

    class Rec(engine.Progress):
        def __init__(self):
            self.bytes, self.done, self.plans = 0, [], []

        def planned(self, plan):
            self.plans.append(plan)

        def bytes_moved(self, n):
            self.bytes += n

        def image_done(self, result):
            self.done.append(result.status)
    rec = Rec()
    _, plan = run(src, dst, names, progress=rec)
    assert rec.plans == [plan] and rec.bytes == plan.bytes_to_move
    assert rec.done == [engine.COPIED, engine.COPIED]


def test_refused_mounts_fall_back_to_the_offered_upload_session(pair):
    src, dst = pair
    names = seed(src, 3)
    dst.allow_mount = False  # every mount answers 202 with a fresh session
    results, plan = run(src, dst, names)
    assert all(r.status == engine.COPIED for r in results.values())
    mounts = [r for r in dst.requests("POST") if "mount" in r.query]
    plain_posts = [r for r in dst.requests("POST") if "mount" not in r.query]
    uploads = [r for r in dst.requests("PUT") if "/uploads/" in r.path]
    assert len(mounts) == 4 and len(plain_posts) == plan.uploads == 8
    assert len(uploads) == 12  # 8 first uploads + 4 into the refused sessions
    for name in names:
        repo = name.split(":")[0]
        assert dst.manifests[repo]["t"] == src.manifests[repo]["t"]


def test_many_jobs_get_enough_pooled_connections(pair, tmp_path, caplog):
    """--jobs beyond urllib3's default pool: every thread keeps its
    connection (no "Connection pool is full, discarding" warnings and no
    connection churn)."""
    import logging
    import yaml
    from tripleo_containers.copy import upload
    src, dst = pair
    names = []
    for i in range(40):
        src.add_image("ns/many%d" % i, "t", [b"own-%d" % i * 20000, b"x%d" % i])
        names.append("ns/many%d:t" % i)
    import time

    def slow_put(req):  # keeps many uploads in flight at once
        if req.method == "PUT" and "/blobs/uploads/" in req.path:
            time.sleep(0.3)
    dst.faults.append(slow_put)
    path = tmp_path / "images.yaml"
    path.write_text(yaml.safe_dump({
        "container_images": [{"imagename": "%s/%s" % (src.address, n),
                              "push_destination": dst.address} for n in names],
        "insecure_registries": [src.address, dst.address]}))
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        results, plan = upload.upload([str(path)], jobs=80)
    assert [r.status for r in results] == [engine.COPIED] * 40
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
    assert len(set(r.client_port for r in dst.log)) <= 80 + engine.META_JOBS + 4


def test_only_temporary_errors_are_retried(pair, monkeypatch):
    """A bug (KeyError) fails its image at once; a 503 is retried."""
    src, dst = pair
    src.add_image("ns/a", "t", [BASE])
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        raise KeyError("size")
    monkeypatch.setattr(client_mod.Client, "copy_blob", broken)
    results, _ = run(src, dst, ["ns/a:t"], jobs=1)
    assert results["ns/a:t"].status == engine.FAILED
    assert "KeyError" in results["ns/a:t"].error
    # tried once (the config is not tried: its image already failed)
    assert len(calls) == 1


def test_cancel_abandons_in_flight_work_and_its_upload_session(pair):
    src, dst = pair
    src.add_image("ns/a", "t", [BASE])
    results = cancel_while_held(
        src, dst, "ns/a:t", lambda req: req.method == "GET" and "/blobs/" in req.path)
    assert [r.status for r in results] == [engine.INTERRUPTED]
    sessions = [r.path for r in dst.requests("POST") if not r.query]
    deletes = [r.path for r in dst.requests("DELETE")]
    assert len(sessions) == len(deletes) == 1
    assert deletes[0].startswith("/v2/ns/a/blobs/uploads/") and len(deletes[0]) > 30
    assert not dst.requests("PUT")


def test_manifest_put_answered_blob_unknown_repairs_the_blobs_and_retries(pair):
    """Another run (or a registry cache) lost a blob between its upload and
    the manifest PUT: the blobs are checked again, the missing one copied
    again, the manifest put again."""
    src, dst = pair
    src.add_image("ns/a", "t", [BASE, MID])
    lost = []

    def lose_a_blob(req):
        if req.method == "PUT" and req.path == "/v2/ns/a/manifests/t" and not lost:
            lost.append(digest_of(MID))
            dst.repo_blobs["ns/a"].discard(digest_of(MID))
    dst.faults.append(lose_a_blob)
    results, _ = run(src, dst, ["ns/a:t"], jobs=1)
    assert results["ns/a:t"].status == engine.COPIED
    assert dst.manifests["ns/a"]["t"] == src.manifests["ns/a"]["t"]
    puts = [r.query["digest"] for r in dst.requests("PUT") if "/uploads/" in r.path]
    assert puts.count(digest_of(MID)) == 2 and puts.count(digest_of(BASE)) == 1
    assert len([r for r in dst.requests("PUT") if "/manifests/" in r.path]) == 2
