"""The engine's levers for a far source: every image's first look in flight
at once, and an upload limit that grows only while the bytes moved grow."""
import inspect
import os
import threading
import time

import pytest
from fake_registry import FakeRegistry, cancel_while_held, digest_of
from tripleo_containers.copy import engine
from tripleo_containers.registry import client as client_mod
from tripleo_containers.registry import reference, transport


def _run(src, dst, names, jobs=2):
    tr = transport.Transport(insecure=[src.address, dst.address], retries=2,
                             sleep=lambda s: None, timeout=(5, 10))
    eng = engine.Engine(client_mod.Client(tr), jobs=jobs, meta_jobs=4)
    copy_jobs = [engine.CopyJob(reference.parse("%s/%s" % (src.address, n)),
                                reference.parse("%s/%s" % (dst.address, n))) for n in names]
    try:
        return eng.run(copy_jobs)
    finally:
        tr.close()


def test_every_source_check_of_a_rerun_is_in_flight_at_once():
    src, dst = FakeRegistry(), FakeRegistry()
    try:
        names = []
        for i in range(30):
            src.add_image("ns/img%d" % i, "t", [b"layer-%d" % i])
            names.append("ns/img%d:t" % i)
        _run(src, dst, names)
        lock = threading.Lock()
        state = {"now": 0, "peak": 0}
        everyone = threading.Barrier(len(names), timeout=5)

        def slow_head(req):
            # Each source HEAD waits until all of them have arrived (or
            # 5 s): in waves of META_JOBS (4 here) they never would.
            if req.method == "HEAD" and "/manifests/" in req.path:
                with lock:
                    state["now"] += 1
                    state["peak"] = max(state["peak"], state["now"])
                try:
                    everyone.wait()
                except threading.BrokenBarrierError:
                    pass
                with lock:
                    state["now"] -= 1

        src.faults.append(slow_head)
        results, _ = _run(src, dst, names)
        assert [r.status for r in results] == [engine.PRESENT] * len(names)
        assert state["peak"] == len(names)
    finally:
        src.close()
        dst.close()


def test_the_upload_limit_grows_while_the_rate_grows_then_stops():
    tuner = engine.Tuner(start=4, step=4, cap=32, period=2.0, growth=1.1)
    assert tuner.sample(0, waiting=10, now=0.0) == 4          # the first mark
    assert tuner.sample(10, waiting=10, now=1.0) == 4         # within the period
    assert tuner.sample(100, waiting=10, now=2.0) == 8        # 50 B/s: grow
    assert tuner.sample(300, waiting=10, now=4.0) == 12       # 100 B/s: grow
    assert tuner.sample(500, waiting=10, now=6.0) == 12       # 100 B/s: flat, stop
    assert tuner.sample(5000, waiting=10, now=8.0) == 12      # stopped for good


def test_the_upload_limit_waits_for_queued_work_and_stays_bounded():
    tuner = engine.Tuner(start=4, step=4, cap=10, period=1.0)
    tuner.sample(0, waiting=0, now=0.0)
    assert tuner.sample(100, waiting=0, now=1.0) == 4         # nothing waits
    assert tuner.sample(300, waiting=3, now=2.0) == 8
    assert tuner.sample(900, waiting=3, now=3.0) == 10        # capped
    assert tuner.sample(9000, waiting=3, now=4.0) == 10
    assert engine.Tuner(start=40, step=40, cap=32).sample(0, 1, 0.0) == 40


def test_uploads_above_jobs_wait_at_the_gate_until_it_widens():
    cancel = threading.Event()
    gate = engine._Gate(1, cancel)
    assert gate.enter()
    entered = threading.Event()

    def second():
        if gate.enter():
            entered.set()
            gate.leave()

    thread = threading.Thread(target=second)
    thread.start()
    deadline = time.monotonic() + 5
    while gate.waiting != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gate.waiting == 1 and not entered.is_set()
    gate.widen(2)
    assert entered.wait(5)
    thread.join(5)
    gate.leave()
    cancel.set()
    assert gate.enter() is True  # free slot: entering is still allowed
    gate.leave()
    gate.widen(0)
    assert gate.enter() is False  # full and cancelled: give up


def test_a_corrupt_blob_streamed_to_several_sites_lands_at_none():
    from fake_registry import digest_of
    src, sites = FakeRegistry(), [FakeRegistry(), FakeRegistry()]
    try:
        good, bad = b"good-layer" * 3000, b"bad-layer" * 3000
        src.add_image("ns/x", "t", [good, bad])
        src.blobs[digest_of(bad)] = b"Y" * len(bad)
        tr = transport.Transport(insecure=[src.address] + [s.address for s in sites],
                                 retries=1, sleep=lambda s: None, timeout=(5, 10))
        eng = engine.Engine(client_mod.Client(tr), jobs=2, meta_jobs=4)
        jobs = [engine.CopyJob(reference.parse("%s/ns/x:t" % src.address),
                               reference.parse("%s/ns/x:t" % site.address)) for site in sites]
        try:
            results, _ = eng.run(jobs)
        finally:
            tr.close()
        assert [r.status for r in results] == [engine.FAILED] * 2
        assert all("hashing to" in r.error for r in results)
        for site in sites:
            assert digest_of(bad) not in site.blobs
            assert digest_of(good) in site.blobs
            assert not [r for r in site.requests("PUT") if "/manifests/" in r.path]
    finally:
        for reg in [src] + sites:
            reg.close()


def test_the_last_wave_starts_at_once_and_only_once():
    # 3 waiting behind 8 in flight (limit 8): all of them start now
    assert engine.last_wave(queued=3, active=8, limit=8) == 11
    # more than a wave still waiting: the tuner decides
    assert engine.last_wave(queued=9, active=8, limit=8) is None
    # room for them already, or nothing waits
    assert engine.last_wave(queued=2, active=5, limit=8) is None
    assert engine.last_wave(queued=0, active=8, limit=8) is None
    tuner = engine.Tuner(start=8, step=8, cap=32)
    assert tuner.finish(11) == 11 and tuner.done
    assert tuner.sample(10 ** 9, 5, 100.0) == 11  # no more tuning after it
    assert engine.Tuner(start=8, step=8, cap=32).finish(99) == 32  # bounded


def _slow_heads(registry, digests, seconds):
    def fault(req):
        if req.method == "HEAD" and any(d in req.path for d in digests):
            time.sleep(seconds)
    return fault


@pytest.fixture
def app():
    """A source holding ns/app:t, a big layer first (above SMALL_BLOB) then
    small ones, and an empty destination: (src, dst, big, smalls)."""
    src, dst = FakeRegistry(), FakeRegistry()
    big = os.urandom(engine.SMALL_BLOB + 4096)
    smalls = [b"small-%d" % i for i in range(6)]
    src.add_image("ns/app", "t", [big] + smalls)
    yield src, dst, big, smalls
    src.close()
    dst.close()


def _big_puts(dst, big):
    return [r for r in dst.log
            if r.method == "PUT" and r.query.get("digest") == digest_of(big)]


def test_the_biggest_blob_starts_uploading_before_the_plan_is_made(app):
    """On a far source the link would idle while the plan HEADs every blob
    at the destination: the biggest blobs' uploads start with the plan."""
    src, dst, big, smalls = app
    # the plan's other HEADs take a while: the big upload must not wait
    dst.faults.append(_slow_heads(dst, [digest_of(b) for b in smalls], 0.2))
    results, _ = _run(src, dst, ["ns/app:t"], jobs=1)
    assert [r.status for r in results] == [engine.COPIED]
    log = list(dst.log)
    put = log.index(_big_puts(dst, big)[0])
    last_head = max(i for i, r in enumerate(log) if r.method == "HEAD" and "/blobs/" in r.path)
    assert put < last_head, log
    assert dst.blobs[digest_of(big)] == big


def test_a_big_blob_already_there_is_not_sent_again_by_the_early_start(app):
    src, dst, big, _ = app
    dst.add_blob("ns/app", big)
    results, _ = _run(src, dst, ["ns/app:t"], jobs=1)
    assert [r.status for r in results] == [engine.COPIED]
    assert not _big_puts(dst, big)


def test_an_early_upload_that_fails_is_retried_by_the_ordinary_path(app):
    src, dst, big, _ = app
    failed = []
    attempts = inspect.signature(engine.Engine).parameters["upload_attempts"].default

    def fail_the_early_puts(req):
        # every attempt of the upload started with the plan fails
        if req.method == "PUT" and req.query.get("digest") == digest_of(big) \
                and len(failed) < attempts:
            failed.append(req)
            return 503, {"Content-Type": "application/json"}, \
                b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}'
    dst.faults.append(fail_the_early_puts)
    results, _ = _run(src, dst, ["ns/app:t"], jobs=1)
    assert [r.status for r in results] == [engine.COPIED]
    assert dst.blobs[digest_of(big)] == big
    # the ordinary upload made one more attempt than the early one could
    assert len(_big_puts(dst, big)) == attempts + 1


def test_cancel_during_an_early_upload_leaves_no_session_open(app):
    """Ctrl-C while the upload started with the plan streams: the run ends,
    the image is interrupted, and its upload session is deleted."""
    src, dst, big, _ = app
    results = cancel_while_held(
        src, dst, "ns/app:t",
        lambda req: req.method == "GET" and req.path.endswith(digest_of(big)))
    assert [r.status for r in results] == [engine.INTERRUPTED]
    sessions = [r.path for r in dst.log if r.method == "POST" and not r.query]
    deletes = [r.path for r in dst.log if r.method == "DELETE"]
    assert len(sessions) == len(deletes) == 1
    assert not [r for r in dst.log if r.method == "PUT"]
