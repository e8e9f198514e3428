"""`container image upload` over a faulty network: real registries, each behind
the fault proxy (tripleo_containers.testing.faultproxy), the real CLI.

Under each transient fault and a mix: the upload completes in bounded time,
every destination image has the source digest (skopeo), no manifest names a
blob its repository lacks, and each unique blob was committed exactly once
(the destination's access log), with failed upload attempts no more than the
faults forced. Under permanent faults: a bounded, clear failure per image.
"""
import collections
import json
import re
import time

import pytest
import yaml

from osc_cli import openstack
from tripleo_containers.testing import faultproxy
from tripleo_containers.testing import images

NAMES = ["keystone", "nova-api", "nova-compute", "mariadb", "glance-api"]
# How long run_upload waits (a bound, not an assertion): generous for CI
# with 2 cores; a healthy run takes ~2 s.
TIME_LIMIT = 75


@pytest.fixture
def pair(registry_factory):
    """Source and destination registries, seeded source, proxies in front."""
    src, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(src.url, "tripleo", "centos-binary-", "t1",
                                   images=NAMES, multiarch=["nova-compute"],
                                   sizes="tiny", seed=3)
    proxies = []

    def proxy(reg, **kw):
        p = faultproxy.FaultProxy(reg.address, **kw).start()
        proxies.append(p)
        return p

    yield src, dst, seeded, proxy
    for p in proxies:
        p.stop()


def write_images_file(path, seeded, src_address, dst_address):
    entries = [{"imagename": "%s/%s:t1" % (src_address, img.repository),
                "push_destination": dst_address} for img in seeded.images.values()]
    with open(path, "w") as f:
        yaml.safe_dump({"container_images": entries,
                        "insecure_registries": [src_address, dst_address]}, f)
    return str(path)


def run_upload(path, *extra, timeout=TIME_LIMIT + 30):
    started = time.monotonic()
    proc = openstack("overcloud", "container", "image", "upload", "-f", "json",
                     "--config-file", path, *extra, timeout=timeout)
    elapsed = time.monotonic() - started
    rows = json.loads(proc.stdout) if proc.stdout.strip().startswith("[") else []
    return proc, rows, elapsed


def references(seeded):
    return ["%s:t1" % img.repository for img in seeded.images.values()]


def assert_destination_complete(dst, seeded, skopeo):
    assert faultproxy.incomplete_images(dst.url, references(seeded)) == []
    for img in seeded.images.values():
        assert skopeo.inspect(dst, "%s:t1" % img.repository, raw=True) == img.manifest


def uploads_by_digest(counter, status=None):
    entries = counter.entries(method="PUT", route="upload", status=status)
    return collections.Counter(e.query for e in entries)


FAULT_CASES = {
    # name: (rules at the source proxy, rules at the destination proxy)
    "reset": ([faultproxy.Rule("reset", 0.3)], [faultproxy.Rule("reset", 0.3)]),
    "500": ([faultproxy.Rule("500", 0.3)], [faultproxy.Rule("500", 0.3)]),
    "502": ([faultproxy.Rule("502", 0.3)], [faultproxy.Rule("502", 0.3)]),
    "503": ([faultproxy.Rule("503", 0.3)], [faultproxy.Rule("503", 0.3)]),
    "429": ([faultproxy.Rule("429", 0.3)], [faultproxy.Rule("429", 0.3)]),
    "429-retry-after": ([faultproxy.Rule("429-retry-after", 0.2)],
                        [faultproxy.Rule("429-retry-after", 0.2)]),
    # truncated bodies: manifests and blobs read from the source
    "truncate": ([faultproxy.Rule("truncate", 0.4, methods=["GET"])], []),
    "stall": ([faultproxy.Rule("stall", 0.2)], [faultproxy.Rule("stall", 0.2)]),
    # the registry commits, the answer is lost: blob PUTs, manifest PUTs, mounts
    "drop": ([], [faultproxy.Rule("drop", 0.5, methods=["PUT", "POST"])]),
    "mix": ([faultproxy.Rule(f, 0.06) for f in
             ("reset", "503", "429", "truncate", "stall", "502")],
            [faultproxy.Rule(f, 0.06) for f in
             ("drop", "reset", "500", "429-retry-after", "503", "stall")]),
}


@pytest.mark.parametrize("case", sorted(FAULT_CASES))
def test_upload_completes_under_transient_faults(case, pair, request_counter, skopeo,
                                                 tmp_path):
    src, dst, seeded, proxy = pair
    src_rules, dst_rules = FAULT_CASES[case]
    # At most one fault per logical request: every request's retry budget
    # (transport retries, whole-upload attempts) is then enough by design.
    psrc = proxy(src, rules=src_rules, seed=11, max_per_key=1, stall_seconds=0.5)
    pdst = proxy(dst, rules=dst_rules, seed=12, max_per_key=1, stall_seconds=0.5)
    path = write_images_file(tmp_path / "images.yaml", seeded, psrc.address, pdst.address)
    counter = request_counter(dst)

    proc, rows, elapsed = run_upload(path)

    injected = psrc.total_faults + pdst.total_faults
    assert injected > 0, "the proxy injected nothing: the case proves nothing"
    assert proc.returncode == 0, "%s faults %s/%s:\n%s" % (
        case, dict(psrc.counts), dict(pdst.counts), proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    assert [r["Result"] for r in rows] == ["copied"] * len(NAMES)
    assert_destination_complete(dst, seeded, skopeo)
    # Each unique blob committed exactly once: a lost answer to a committed
    # PUT must be recognised (HEAD) rather than uploaded again.
    committed = uploads_by_digest(counter, status=201)
    assert len(committed) == len(seeded.blobs) and set(committed.values()) == {1}, committed
    # Attempts that did not commit are bounded by the faults that could
    # have broken an upload: a fault on the PUT itself or a truncated
    # source blob read feeding it.
    attempts = sum(uploads_by_digest(counter).values())
    forcing = (len(pdst.faulted(method="PUT", route="upload"))
               + len(psrc.faulted("truncate", route="blob")))
    assert attempts <= len(seeded.blobs) + forcing
    # Manifests: one PUT per manifest plus one per fault on a manifest PUT.
    manifests = len(NAMES) + len(seeded.images["nova-compute"].children)
    manifest_puts = counter.count(method="PUT", route="manifest", status=201)
    assert manifest_puts <= manifests + len(pdst.faulted(method="PUT", route="manifest"))
    faultproxy.record("faults", case=case, faults=dict(psrc.counts + pdst.counts),
                      requests=len(psrc.requests) + len(pdst.requests),
                      images_verified=len(NAMES), seconds=round(elapsed, 1))


def test_rerun_under_faults_moves_nothing(pair, request_counter, skopeo, tmp_path):
    src, dst, seeded, proxy = pair
    path = write_images_file(tmp_path / "images.yaml", seeded, src.address, dst.address)
    proc, rows, _ = run_upload(path)
    assert proc.returncode == 0, proc.stderr
    psrc = proxy(src, rules=[faultproxy.Rule("503", 0.3), faultproxy.Rule("reset", 0.2)],
                 seed=5, max_per_key=1)
    pdst = proxy(dst, rules=[faultproxy.Rule("503", 0.3), faultproxy.Rule("reset", 0.2)],
                 seed=6, max_per_key=1)
    path = write_images_file(tmp_path / "images2.yaml", seeded, psrc.address, pdst.address)
    counter = request_counter(dst)
    proc, rows, _ = run_upload(path)
    assert proc.returncode == 0, proc.stderr
    assert psrc.total_faults + pdst.total_faults > 0
    assert {r["Result"] for r in rows} == {"already present"}
    assert counter.count(method="PUT") == 0 and counter.count(method="POST") == 0


def _assert_clear_failure(proc, rows):
    # How soon it gives up is bounded by run_upload's wait and, where a
    # proxy can count them, by the number of tries (no timed assertion:
    # the machine is shared); the seconds go to the reliability report.
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "%d of %d images failed to copy" % (len(NAMES), len(NAMES)) in proc.stderr
    # every image is named once, alone or in its reason's group
    failed = [line for line in proc.stderr.splitlines() if line.startswith("failed: ")]
    grouped = [re.match(r"failed: (\d+) images: ", line) for line in failed]
    assert sum(int(m.group(1)) if m else 1 for m in grouped) == len(NAMES), proc.stderr


def test_destination_always_503_gives_up_per_image(pair, tmp_path):
    src, dst, seeded, proxy = pair
    pdst = proxy(dst, rules=[faultproxy.Rule("503")], max_per_key=None)
    path = write_images_file(tmp_path / "images.yaml", seeded, src.address, pdst.address)
    proc, rows, elapsed = run_upload(path)
    _assert_clear_failure(proc, rows)
    faultproxy.record("permanent", case="always-503", seconds=round(elapsed, 1),
                      faults=dict(pdst.counts))
    assert "503" in proc.stderr and pdst.address in proc.stderr
    # bounded: the /v2/ ping and its 4 retries, and each image's first
    # request, sent once beside the ping; every image then fails on the
    # remembered ping error instead of retrying again
    assert pdst.counts["503"] <= 5 + len(seeded.images)


def test_destination_refusing_connections_gives_up_per_image(pair, tmp_path):
    src, dst, seeded, proxy = pair
    pdst = proxy(dst)
    address = pdst.address
    pdst.stop()  # nothing listens there any more
    path = write_images_file(tmp_path / "images.yaml", seeded, src.address, address)
    proc, rows, elapsed = run_upload(path)
    _assert_clear_failure(proc, rows)
    faultproxy.record("permanent", case="refused", seconds=round(elapsed, 1))
    assert "cannot reach %s" % address in proc.stderr


def test_source_never_answering_gives_up_in_bounded_time(pair, tmp_path):
    """The registry accepts connections and never answers (a hung server or
    a black-holing firewall)."""
    src, dst, seeded, proxy = pair
    psrc = proxy(src, rules=[faultproxy.Rule("hang")], max_per_key=None,
                 hang_seconds=120)
    path = write_images_file(tmp_path / "images.yaml", seeded, psrc.address, dst.address)
    proc, rows, elapsed = run_upload(path, "--timeout", "2", timeout=150)
    _assert_clear_failure(proc, rows)
    faultproxy.record("permanent", case="never-answers", seconds=round(elapsed, 1),
                      faults=dict(psrc.counts))
    assert psrc.address in proc.stderr
    # the ping's tries, then remembered; and each image's first request,
    # sent once beside the ping (they hang at the same time as it)
    assert psrc.counts["hang"] <= 5 + len(seeded.images)
