#!/usr/bin/env python3
"""Benchmark `openstack overcloud container image upload` against skopeo.

Builds a Kolla-like set (60 images sharing base layers, ~300 MiB of unique
blobs: tripleo_containers.testing.images "bench" sizes) in a local source
registry, then for each tool copies it into a fresh, empty destination
registry and runs it again on the populated destination:

* ours:        openstack overcloud container image upload --config-file F
* ours-standalone: tripleo-containers image upload --config-file F (the same
  command class in the package's own console script, without openstackclient)
* skopeo sync: one `skopeo sync --src yaml` over all 60 images
* skopeo copy: one `skopeo copy` per image, in sequence
* ours-library: the library call alone (no `openstack` start-up), timed
  inside the process; needs the images file that "ours" wrote, so it runs
  after it

Every registry is Debian's docker-registry (distribution 2.8) on 127.0.0.1
with its own config and storage (tripleo_containers.registry.local).
Reported per run: wall time, bytes committed into the destination (sum of
the sizes of blobs whose upload PUT returned 201, from the access log) vs
the set's unique bytes, requests at the destination by method/route, the
peak RSS of the tool process (GNU time %M), and the CPU seconds (user +
system) of the tool process and of the source and destination registries:
on a small machine the registries' CPU, which every tool pays alike, sets
the floor.

Usage: python tools/bench_upload.py [--images 60] [--sizes bench|full] [--json OUT]
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tripleo_containers.registry import local  # noqa: E402
from tripleo_containers.testing import images, registry_log  # noqa: E402

OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")
SKOPEO_ENV = None


CPU = {}  # CPU seconds (user + system) of the last tool run(s), summed


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def timed(argv, env=None):
    """(wall seconds, peak RSS KiB, CompletedProcess) of one command; its CPU
    seconds are added to CPU["tool"]."""
    start = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "PEAKRSS %M CPU %U %S"] + argv, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - start
    cpu = re.findall(r"CPU ([0-9.]+) ([0-9.]+)", proc.stderr)
    if cpu:
        CPU["tool"] = CPU.get("tool", 0.0) + float(cpu[-1][0]) + float(cpu[-1][1])
    match = re.findall(r"PEAKRSS (\d+)", proc.stderr)
    if proc.returncode != 0:
        raise SystemExit("%s failed (%d):\n%s" % (" ".join(argv[:4]), proc.returncode,
                                                  proc.stderr[-3000:]))
    return wall, int(match[-1]) if match else 0, proc


def dest_stats(counter, blob_sizes):
    entries = counter.entries()
    counts = collections.Counter("%s %s" % (e.method, registry_log.route_of(e.path))
                                 for e in entries)
    committed = 0
    uploads = 0
    for e in entries:
        if e.method == "PUT" and registry_log.route_of(e.path) == "upload" and e.status == 201:
            m = re.search(r"digest=(sha256(?::|%3A)[0-9a-f]{64})", e.query or "")
            if m:
                uploads += 1
                committed += blob_sizes.get(m.group(1).replace("%3A", ":"), 0)
    return dict(requests=len(entries), by_route=dict(sorted(counts.items())),
                blob_uploads=uploads, bytes_committed=committed,
                manifest_heads=counts.get("HEAD manifest", 0),
                manifest_puts=counts.get("PUT manifest", 0))


def images_file(src, dst, seeded, workdir):
    path = os.path.join(workdir, "images-%s.yaml" % dst.port)
    with open(path, "w") as f:
        yaml.safe_dump({"container_images": [
            {"imagename": img.reference, "push_destination": dst.address}
            for img in seeded.images.values()],
            "insecure_registries": [src.address, dst.address]}, f)
    return path


def run_ours(src, dst, seeded, workdir, jobs):
    path = images_file(src, dst, seeded, workdir)
    return timed([OPENSTACK, "overcloud", "container", "image", "upload",
                  "--config-file", path, "--jobs", str(jobs), "-f", "value"])


def run_ours_standalone(src, dst, seeded, workdir, jobs):
    path = images_file(src, dst, seeded, workdir)
    script = os.path.join(os.path.dirname(sys.executable), "tripleo-containers")
    return timed([script, "image", "upload", "--config-file", path,
                  "--jobs", str(jobs), "-f", "value"])


def run_ours_library(src, dst, seeded, workdir, jobs):
    """The same copy without the `openstack` CLI start-up (~1.5 s of
    importing openstackclient here): tripleo_containers.copy.upload in a
    fresh interpreter, timed around the call only."""
    path = images_file(src, dst, seeded, workdir)
    code = ("import sys, time, json\n"
            "from tripleo_containers.copy import upload\n"
            "t = time.monotonic()\n"
            "results, plan = upload.upload([sys.argv[1]], jobs=int(sys.argv[2]))\n"
            "assert all(r.status != 'failed' for r in results), results\n"
            "print('ELAPSED %f' % (time.monotonic() - t))\n")
    wall, rss, proc = timed([sys.executable, "-c", code, path, str(jobs)])
    return float(re.findall(r"ELAPSED ([0-9.]+)", proc.stdout)[-1]), rss, proc


def run_sync(src, dst, seeded, workdir):
    path = os.path.join(workdir, "sync.yaml")
    repos = collections.defaultdict(list)
    for img in seeded.images.values():
        repos[img.repository].append(seeded.tag)
    with open(path, "w") as f:
        yaml.safe_dump({src.address: {"tls-verify": False, "images": dict(repos)}}, f)
    return timed(["skopeo", "sync", "--all", "--preserve-digests", "--src", "yaml",
                  "--dest", "docker", "--dest-tls-verify=false", path, dst.address],
                 env=SKOPEO_ENV)


def run_copy(src, dst, seeded, workdir):
    total_wall, peak = 0.0, 0
    for img in seeded.images.values():
        wall, rss, _ = timed([
            "skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false",
            "--dest-tls-verify=false", "docker://" + img.reference,
            "docker://%s/%s:%s" % (dst.address, img.repository, seeded.tag)],
            env=SKOPEO_ENV)
        total_wall += wall
        peak = max(peak, rss)
    return total_wall, peak, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--sizes", default="bench")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--tools", default="ours,ours-standalone,ours-library,skopeo-sync,skopeo-copy")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="bench-upload-")
    auth = os.path.join(workdir, "auth.json")
    with open(auth, "w") as f:
        f.write('{"auths": {}}')
    # Not in os.environ: docker-registry would read REGISTRY_AUTH_FILE as
    # its own config key (auth.file) and refuse to start.
    global SKOPEO_ENV
    SKOPEO_ENV = dict(os.environ, REGISTRY_AUTH_FILE=auth)
    started = []

    def registry(name):
        reg = local.start(address="127.0.0.1:0",
                          storage_dir=os.path.join(workdir, name, "storage"),
                          state_dir=os.path.join(workdir, name, "state"))
        started.append(reg)
        return reg

    report = collections.OrderedDict()
    try:
        src = registry("source")
        t0 = time.monotonic()
        seeded = images.seed_kolla_set(src.url, images=images.KOLLA_IMAGES[:args.images],
                                       sizes=args.sizes)
        report["set"] = dict(images=len(seeded.images), unique_blobs=len(seeded.blobs),
                             unique_bytes=seeded.unique_bytes,
                             seed_seconds=round(time.monotonic() - t0, 1))
        print("set: %d images, %d unique blobs, %.1f MiB unique" % (
            len(seeded.images), len(seeded.blobs), seeded.unique_bytes / 2.0 ** 20),
            flush=True)
        runners = {"ours": lambda d: run_ours(src, d, seeded, workdir, args.jobs),
                   "ours-standalone": lambda d: run_ours_standalone(src, d, seeded,
                                                                    workdir, args.jobs),
                   "ours-library": lambda d: run_ours_library(src, d, seeded, workdir,
                                                              args.jobs),
                   "skopeo-sync": lambda d: run_sync(src, d, seeded, workdir),
                   "skopeo-copy": lambda d: run_copy(src, d, seeded, workdir)}
        # Rounds interleave the tools so that load from other processes on
        # the machine spreads over all of them; the median is reported.
        samples = collections.defaultdict(list)
        for rnd in range(args.repeat):
            for tool in args.tools.split(","):
                name = "dest-%s-%d" % (tool, rnd)
                dst = registry(name)
                for phase in ("first", "rerun"):
                    counter = registry_log.RequestCounter(dst)
                    CPU.clear()
                    before = cpu_seconds(src.pid), cpu_seconds(dst.pid)
                    wall, rss, _ = runners[tool](dst)
                    stats = dest_stats(counter, seeded.blobs)
                    stats.update(wall_seconds=round(wall, 2),
                                 peak_rss_mib=round(rss / 1024.0, 1),
                                 cpu_tool=round(CPU.get("tool", 0.0), 2),
                                 cpu_source_registry=round(cpu_seconds(src.pid) - before[0], 2),
                                 cpu_dest_registry=round(cpu_seconds(dst.pid) - before[1], 2))
                    samples["%s/%s" % (tool, phase)].append(stats)
                    print("round %d %-12s %-5s %7.2f s  committed %7.1f MiB in %3d uploads  "
                          "%5d requests (%d manifest HEAD, %d manifest PUT)  "
                          "peak RSS %6.1f MiB  CPU s tool %.2f src %.2f dst %.2f" % (
                              rnd, tool, phase, wall, stats["bytes_committed"] / 2.0 ** 20,
                              stats["blob_uploads"], stats["requests"],
                              stats["manifest_heads"], stats["manifest_puts"],
                              rss / 1024.0, stats["cpu_tool"], stats["cpu_source_registry"],
                              stats["cpu_dest_registry"]), flush=True)
                dst.stop()
                shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)
        for key, runs in samples.items():
            walls = sorted(r["wall_seconds"] for r in runs)
            summary = dict(runs[0])
            summary.update(wall_seconds=walls[len(walls) // 2], wall_min=walls[0],
                           wall_max=walls[-1], runs=len(walls))
            for k in ("cpu_tool", "cpu_source_registry", "cpu_dest_registry"):
                values = sorted(r[k] for r in runs)
                summary[k] = values[len(values) // 2]
            report[key] = summary
        print("\nmedian of %d rounds:" % args.repeat)
        for key, r in report.items():
            if key == "set":
                continue
            print("%-20s %6.2f s (min %.2f, max %.2f)  %7.1f MiB committed  %5d requests  "
                  "%3d manifest HEAD  %3d manifest PUT  peak RSS %.1f MiB  "
                  "CPU s tool %.2f src %.2f dst %.2f" % (
                      key, r["wall_seconds"], r["wall_min"], r["wall_max"],
                      r["bytes_committed"] / 2.0 ** 20, r["requests"], r["manifest_heads"],
                      r["manifest_puts"], r["peak_rss_mib"], r["cpu_tool"],
                      r["cpu_source_registry"], r["cpu_dest_registry"]))
    finally:
        for reg in started:
            reg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    print("\nmachine: %d CPUs, %s; CPU pressure from other processes (some avg60): %s" % (
        os.cpu_count(), _mem(), _pressure()))


def _mem():
    with open("/proc/meminfo") as f:
        return "%.0f GiB RAM" % (int(f.readline().split()[1]) / 2.0 ** 20)


def _pressure():
    try:
        with open("/proc/pressure/cpu") as f:
            return f.readline().split()[2].split("=")[1] + "%"
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()
