"""Crash safety of `container image upload`: SIGKILL the tool at random points
of a multi-image copy, and SIGKILL/restart the destination registry mid-copy.

After every kill the destination must never serve an image whose manifest is
present but incomplete (a deploy would pull a broken image); a final run must
complete and move only what is still missing (the destination's access log).
Kill points are chosen on requests the destination proxy sees, from a seeded
RNG, so a failure replays.
"""
import os
import random
import signal
import subprocess
import threading
import time

import pytest
import requests
import yaml

from osc_cli import OPENSTACK
from test_faults import write_images_file
from tripleo_containers.copy import upload
from tripleo_containers.testing import faultproxy
from tripleo_containers.testing import images

NAMES = ["keystone", "nova-api", "nova-scheduler", "nova-conductor", "nova-compute",
         "mariadb", "rabbitmq", "glance-api", "neutron-server", "neutron-dhcp-agent",
         "heat-api", "heat-engine"]
KILLS = 10


def _refs(seeded):
    return ["%s:t1" % img.repository for img in seeded.images.values()]


def _start(path):
    return subprocess.Popen(
        [OPENSTACK, "overcloud", "container", "image", "upload", "-f", "json",
         "--config-file", path, "--jobs", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _blob_presence(dst, seeded):
    """{digest: True if some destination repository serves it}."""
    present = {}
    with requests.Session() as s:
        for digest in seeded.blobs:
            present[digest] = any(
                s.head("%s/v2/%s/blobs/%s" % (dst.url, img.repository, digest),
                       verify=False, timeout=10).status_code == 200
                for img in seeded.images.values())
    return present


@pytest.fixture
def seeded_pair(registry_factory):
    src, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(src.url, "tripleo", "centos-binary-", "t1",
                                   images=NAMES, multiarch=["nova-compute"],
                                   sizes="tiny", seed=9)
    return src, dst, seeded


def test_sigkill_ten_times_then_rerun_completes(seeded_pair, request_counter, skopeo,
                                                tmp_path):
    src, dst, seeded = seeded_pair
    rng = random.Random(20240607)
    path = write_images_file(tmp_path / "images.yaml", seeded, src.address, dst.address)
    killed_at = []
    for round_ in range(KILLS):
        # Kill on the N-th PUT (blob or manifest) the destination sees, N
        # drawn from the first third of the PUTs still to do (dry-run plan):
        # reads and mounts are repeated by every run, PUTs are progress, so
        # the rounds walk through the copy and later ones find some images
        # complete and some not.
        plan = upload.upload([path], dry_run=True)[1]
        remaining = plan.uploads + plan.images - plan.images_present
        target = rng.randint(1, max(1, remaining // 3))
        stage = rng.choice(["request", "response"])
        proc_box = []
        fired = threading.Event()
        writes = []

        def hook(at, req, target=target, stage=stage, writes=writes):
            if at != stage or req.method != "PUT" or fired.is_set():
                return
            writes.append(req)
            if len(writes) >= target:
                fired.set()
                os.kill(proc_box[0].pid, signal.SIGKILL)

        proxy = faultproxy.FaultProxy(dst.address, hook=hook).start()
        try:
            p = write_images_file(tmp_path / ("images-%d.yaml" % round_), seeded,
                             src.address, proxy.address)
            proc = _start(p)
            proc_box.append(proc)
            out, err = proc.communicate(timeout=120)
        finally:
            proxy.stop()
        if fired.is_set():
            assert proc.returncode == -signal.SIGKILL
            killed_at.append((target, stage))
        else:
            # the run finished before the kill point: fine, but it must be clean
            assert proc.returncode == 0, err.decode()[-2000:]
        problems = faultproxy.incomplete_images(dst.url, _refs(seeded))
        assert problems == [], "after kill %d at %s/%s: %s" % (round_, target, stage, problems)
    assert len(killed_at) >= KILLS // 2, "too few kills landed: %s" % killed_at

    missing = [d for d, there in _blob_presence(dst, seeded).items() if not there]
    counter = request_counter(dst)
    proc = subprocess.run(
        [OPENSTACK, "overcloud", "container", "image", "upload", "-f", "json",
         "--config-file", path], capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert faultproxy.incomplete_images(dst.url, _refs(seeded)) == []
    for img in seeded.images.values():
        assert skopeo.inspect(dst, "%s:t1" % img.repository, raw=True) == img.manifest
    # Only blobs that no destination repository had were uploaded again;
    # the rest (present in some repository) were mounted, once each.
    uploaded = sorted(e.query.split("digest=")[-1].replace("%3A", ":")
                      for e in counter.entries(method="PUT", route="upload", status=201))
    assert uploaded == sorted(missing)
    faultproxy.record("crash", kills=len(killed_at), images_verified=len(NAMES),
                      blobs_reuploaded=len(uploaded), blobs=len(seeded.blobs))


def test_destination_registry_killed_and_restarted_mid_copy(seeded_pair, registry_factory,
                                                            skopeo, tmp_path):
    src, dst, _ = seeded_pair
    state = {"reg": dst}
    rng = random.Random(7)
    for round_, target in enumerate(rng.sample(range(5, 60), 3)):
        # A fresh build (new blobs, new tag) per round, so every round has a
        # whole copy to do and the restart lands in the middle of it.
        tag = "r%d" % round_
        seeded = images.seed_kolla_set(src.url, "tripleo", "centos-binary-", tag,
                                       images=NAMES[:6], sizes="tiny", seed=100 + round_)
        refs = ["%s:%s" % (img.repository, tag) for img in seeded.images.values()]
        restarted = threading.Event()

        def hook(at, req, target=target, restarted=restarted):
            if at != "request" or req.index != target:
                return
            reg = state["reg"]
            os.kill(reg.pid, signal.SIGKILL)  # a crash, not a clean stop
            reg.stop(timeout=2)

            def restart():
                time.sleep(0.5)
                state["reg"] = registry_factory(address=reg.address,
                                                storage_dir=reg.storage_dir)
                restarted.set()
            threading.Thread(target=restart, daemon=True).start()

        proxy = faultproxy.FaultProxy(dst.address, hook=hook).start()
        try:
            path = str(tmp_path / ("images-%d.yaml" % round_))
            with open(path, "w") as f:
                yaml.safe_dump({"container_images": [
                    {"imagename": "%s/%s" % (src.address, ref),
                     "push_destination": proxy.address} for ref in refs],
                    "insecure_registries": [src.address, proxy.address]}, f)
            proc = subprocess.run(
                [OPENSTACK, "overcloud", "container", "image", "upload",
                 "--config-file", path], capture_output=True, text=True,
                timeout=120, stdin=subprocess.DEVNULL)
        finally:
            proxy.stop()
        assert restarted.wait(10), "the restart never happened (request %d)" % target
        # The outage (~0.5 s) is shorter than the retry budget: no image fails.
        assert proc.returncode == 0, "restart before request %d:\n%s" % (
            target, proc.stderr[-3000:])
        assert faultproxy.incomplete_images(state["reg"].url, refs) == []
        for img in seeded.images.values():
            assert skopeo.inspect(state["reg"], "%s:%s" % (img.repository, tag),
                                  raw=True) == img.manifest
        faultproxy.record("registry-restart", round=round_, at_request=target,
                          images_verified=len(refs))
