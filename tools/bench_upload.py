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

WAN mode (``--wan RTT,LINK,CONN``, e.g. ``--wan 200ms,100mbit,20mbit``): the
source registry sits behind tripleo_containers.testing.wanproxy (RTT/2 per
direction, one RTT of handshake per new connection, LINK shared by all
connections, CONN per connection, downstream), as it does for an undercloud
far from its source; the destination stays on loopback, as the undercloud's
own registry does.  The default tools become ours, ours-standalone,
skopeo-sync and "reference": an honest ideal of our own, in this process
(no start-up): every manifest GET at once, then every unique blob GET on
enough persistent connections to fill the link (2 x LINK/CONN), bytes
discarded.  Printed besides: the floor (unique bytes / LINK), each run's
ratio to it, ratios to floor + start-up (the wall time of the command's
``--help``: interpreter, openstackclient and plugin imports), and per run
what the source saw through the proxy: connections opened and bytes read.
``--wan-selfcheck`` first checks the proxy itself against a plain HTTP file
server (python -m http.server, curl as the client): one stream and N
streams must give the asked rates and latency within 10 %.

The 1/5/15-minute load average is printed beside every figure: on a shared
machine a figure without it means little.  The package is byte-compiled
first (compileall), as pip and Debian install it.

Usage: python tools/bench_upload.py [--images 60] [--sizes bench|full] [--json OUT]
           [--wan RTT,LINK,CONN [--wan-selfcheck] [--timeline]]
"""
import argparse
import collections
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tripleo_containers.registry import local  # noqa: E402
from tripleo_containers.testing import images, registry_log  # noqa: E402
from tripleo_containers.testing import wanproxy  # noqa: E402

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


def source_reference(src, seeded, img):
    """img's reference as the tools see the source: the registry itself or,
    in WAN mode, the proxy in front of it."""
    return src.address + img.reference[len(seeded.registry):]


def images_file(src, dst, seeded, workdir):
    path = os.path.join(workdir, "images-%s.yaml" % dst.port)
    with open(path, "w") as f:
        yaml.safe_dump({"container_images": [
            {"imagename": source_reference(src, seeded, img),
             "push_destination": dst.address}
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
            "--dest-tls-verify=false", "docker://" + source_reference(src, seeded, img),
            "docker://%s/%s:%s" % (dst.address, img.repository, seeded.tag)],
            env=SKOPEO_ENV)
        total_wall += wall
        peak = max(peak, rss)
    return total_wall, peak, None


class Via(object):
    """The source registry as the tools reach it through the WAN proxy."""

    def __init__(self, proxy):
        self.proxy = proxy
        self.address = proxy.address
        self.url = "http://" + proxy.address


def run_reference(src, seeded, streams, phase):
    """The ideal copier's source side, timed in this process: every manifest
    GET at once (HEAD on a re-run, which is all a finished copy needs), then
    every unique blob GET, biggest first, on ``streams`` persistent
    connections, bytes read and discarded.  No destination and no start-up:
    what is left is what the path itself costs."""
    import requests
    local_state = threading.local()

    def session():
        if not hasattr(local_state, "session"):
            local_state.session = requests.Session()
            opened.append(local_state.session)
        return local_state.session

    opened = []
    start = time.monotonic()
    refs = list(seeded.images.values())

    def manifest(img):
        url = "%s/v2/%s/manifests/%s" % (src.url, img.repository, seeded.tag)
        method = "HEAD" if phase == "rerun" else "GET"
        resp = session().request(method, url, headers={"Accept": images.ACCEPT}, timeout=60)
        resp.raise_for_status()
        if phase == "rerun":
            return img, []
        doc = resp.json()
        docs = [doc]
        for child in doc.get("manifests") or []:
            resp = session().get("%s/v2/%s/manifests/%s" % (
                src.url, img.repository, child["digest"]),
                headers={"Accept": images.ACCEPT}, timeout=60)
            resp.raise_for_status()
            docs.append(resp.json())
        return img, [b for d in docs for b in ([d["config"]] if d.get("config") else [])
                     + list(d.get("layers") or [])]

    def blob(item):
        digest, (size, repo) = item
        got = 0
        with session().get("%s/v2/%s/blobs/%s" % (src.url, repo, digest), stream=True,
                           timeout=60) as resp:
            resp.raise_for_status()
            for chunk in resp.iter_content(1 << 20):
                got += len(chunk)
        if got != size:
            raise SystemExit("reference: blob %s: %d of %d bytes" % (digest, got, size))

    with futures.ThreadPoolExecutor(max(streams, len(refs))) as pool:
        wanted = collections.OrderedDict()
        for img, blobs in pool.map(manifest, refs):
            for b in blobs:
                wanted.setdefault(b["digest"], (b["size"], img.repository))
    with futures.ThreadPoolExecutor(streams) as pool:
        list(pool.map(blob, sorted(wanted.items(), key=lambda kv: -kv[1][0])))
    wall = time.monotonic() - start
    for sess in opened:
        sess.close()
    return wall, 0, None


class Timeline(object):
    """``--timeline``: how one run used the emulated link, from the WAN
    proxy's byte count sampled every 50 ms: the share of the link used in
    each second, the first and last byte through the proxy, and the time
    from the last byte to the command's exit; from the destination
    registry's log, how many manifest PUTs ended after the last blob upload
    (images that waited for that blob)."""

    def __init__(self, proxy, link, dst):
        self.proxy, self.link, self.dst = proxy, link, dst
        self.samples = []
        self._stop = threading.Event()

    def __enter__(self):
        self.first_record = len(self.proxy.records)
        try:
            self.log_offset = os.path.getsize(self.dst.log)
        except OSError:
            self.log_offset = 0
        self.t0, self.w0 = time.monotonic(), time.time()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.proxy.bytes_down))
            self._stop.wait(0.05)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.t1 = time.monotonic()

    def report(self):
        t0, base = self.t0, self.samples[0][1] if self.samples else 0
        per_second, prev = [], base
        for second in range(int(math.ceil(self.t1 - t0))):
            edge = t0 + second + 1
            upto = [b for ts, b in self.samples if ts <= edge]
            now = upto[-1] if upto else prev
            per_second.append("%d" % round(100.0 * (now - prev) / self.link))
            prev = now
        recs = self.proxy.records[self.first_record:]
        firsts = [r.first_down - t0 for r in recs if r.first_down is not None]
        lasts = [r.last_down - t0 for r in recs if r.last_down is not None]
        lines = ["  link use per second (%%): %s" % " ".join(per_second)]
        if firsts:
            lines.append("  first byte %.3f s, last byte %.3f s, exit %.3f s after the "
                         "last byte" % (min(firsts), max(lasts), self.t1 - t0 - max(lasts)))
        blob_ends, manifest_ends = [], []
        with open(self.dst.log) as f:
            f.seek(self.log_offset)
            for line in f:
                if '"http.request.uri"' not in line or '"PUT"' not in line:
                    continue
                rec = json.loads(line)
                when = _log_time(rec["time"]) - self.w0
                if "/blobs/uploads/" in rec["http.request.uri"]:
                    blob_ends.append(when)
                elif "/manifests/" in rec["http.request.uri"]:
                    manifest_ends.append(when)
        if blob_ends and manifest_ends:
            last = max(blob_ends)
            lines.append("  manifest PUTs: %d, %d of them after the last blob upload "
                         "(%.3f s); last manifest at %.3f s" % (
                             len(manifest_ends), sum(1 for m in manifest_ends if m > last),
                             last, max(manifest_ends)))
        return "\n".join(lines)


def _log_time(text):
    """distribution's log time (RFC 3339, nanoseconds) -> epoch seconds."""
    import datetime
    stamp = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?", text)
    whole = datetime.datetime.strptime(stamp.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    return whole + float(stamp.group(2) or 0)


def startup_seconds(argv, rounds=3):
    """Median wall time of ``argv + ['--help']``: interpreter, cliff and
    plugin imports, i.e. what a run costs before its first request."""
    walls = sorted(timed(argv + ["--help"])[0] for _ in range(rounds))
    return walls[len(walls) // 2]


def _wait_listening(port, seconds=10.0):
    import socket
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("self-check file server did not listen on port %d" % port)


def wan_selfcheck(profile, workdir):
    """The proxy against a plain file server: first-byte latency of one
    stream (handshake + request round trip = 2 RTT) and the rate of 1, N
    and 2N streams (N = LINK/CONN) against min(streams x CONN, LINK).
    Returns [(check, measured, expected, ok)]."""
    rtt, link, conn = profile
    per = conn or link or 50e6
    streams = int(math.ceil(link / conn)) if link and conn else 4
    size = int(min(64 << 20, max(1 << 20, per * 2)))
    root = os.path.join(workdir, "selfcheck")
    os.makedirs(root)
    with open(os.path.join(root, "blob"), "wb") as f:
        for _ in range(0, size, 1 << 20):
            f.write(os.urandom(1 << 20))
    size = os.path.getsize(os.path.join(root, "blob"))
    port = local.free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                               "--directory", root, str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checks = []
    try:
        _wait_listening(port)
        with wanproxy.WanProxy("127.0.0.1:%d" % port, rtt=rtt, link_rate=link,
                               conn_rate=conn) as proxy:
            url = "http://%s/blob" % proxy.address
            for n in sorted({1, streams, 2 * streams}):
                expected_rate = min(n * (conn or float("inf")), link or float("inf"))
                limit = 60 + 4 * n * size / expected_rate
                procs = [subprocess.Popen(
                    ["curl", "-s", "-o", "/dev/null", "-w",
                     "%{time_starttransfer} %{time_total} %{size_download}", url],
                    stdout=subprocess.PIPE, text=True) for _ in range(n)]
                outs = [p.communicate(timeout=limit)[0].split() for p in procs]
                first = min(float(o[0]) for o in outs)
                last = max(float(o[1]) for o in outs)
                got = sum(int(o[2]) for o in outs)
                if got != n * size:
                    raise SystemExit("self-check: %d of %d bytes" % (got, n * size))
                rate = got / (last - first)
                checks.append(("%2d stream(s) MB/s" % n, rate / 1e6, expected_rate / 1e6))
                if n == 1:
                    checks.append(("first byte after s", first, 2 * rtt))
    finally:
        local.stop_pid(server.pid, proc=server)
    return [(name, got, want, abs(got / want - 1) <= 0.10 if want else got < 0.01)
            for name, got, want in checks]


def _load():
    return "load %.2f %.2f %.2f" % os.getloadavg()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--sizes", default="bench")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--tools", help="comma-separated (default: ours,ours-standalone,"
                        "ours-library,skopeo-sync,skopeo-copy; with --wan: ours,"
                        "ours-standalone,skopeo-sync,reference)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--wan", metavar="RTT,LINK,CONN",
                        help="reach the source through an emulated WAN, e.g. "
                        "200ms,100mbit,20mbit (see the module docstring)")
    parser.add_argument("--wan-selfcheck", action="store_true",
                        help="check the WAN proxy against a plain file server first")
    parser.add_argument("--timeline", action="store_true",
                        help="with --wan: per run of ours, the link's use per second, "
                             "first/last byte, and the manifests that waited for the "
                             "last blob")
    args = parser.parse_args()
    profile = None
    if args.wan:
        try:
            profile = wanproxy.parse_profile(args.wan)
        except ValueError as exc:
            parser.error("--wan: %s" % exc)
    elif args.wan_selfcheck or args.timeline:
        parser.error("--wan-selfcheck and --timeline need --wan RTT,LINK,CONN")
    tools = (args.tools or ("ours,ours-standalone,skopeo-sync,reference" if profile else
                            "ours,ours-standalone,ours-library,skopeo-sync,skopeo-copy")
             ).split(",")

    # As pip and Debian install it: byte-compiled.  An editable install
    # under PYTHONDONTWRITEBYTECODE (this machine's default) would compile
    # every module of the plugin on each run, the upload path's (about
    # 40 ms here) only in the real command and not in its --help.
    import compileall
    import tripleo_containers
    package = os.path.dirname(tripleo_containers.__file__)
    compiled = compileall.compile_dir(package, quiet=1)
    print("byte-compiled %s: %s" % (package, "ok" if compiled else "FAILED"), flush=True)

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
    proxy = None
    try:
        if args.wan_selfcheck:
            print("WAN proxy self-check (%s, file server + curl)  %s" % (args.wan, _load()))
            checks = wan_selfcheck(profile, workdir)
            for name, got, want, ok in checks:
                print("  %-22s %8.3f  asked %8.3f  %s" % (
                    name, got, want, "ok" if ok else "OFF BY MORE THAN 10 %"), flush=True)
            report["selfcheck"] = [dict(check=n.strip(), measured=round(g, 4),
                                        asked=round(w, 4), ok=ok) for n, g, w, ok in checks]
            print("  %s" % _load())
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
        via = src
        streams = 16
        if profile:
            rtt, link, conn = profile
            proxy = wanproxy.WanProxy(src.address, rtt=rtt, link_rate=link,
                                      conn_rate=conn).start()
            via = Via(proxy)
            if link and conn:
                streams = max(4, min(64, 2 * int(math.ceil(link / conn))))
            floor = seeded.unique_bytes / link if link else 0.0
            report["wan"] = dict(profile=args.wan, rtt=rtt, link_bytes_per_s=link,
                                 conn_bytes_per_s=conn, floor_seconds=round(floor, 2))
            print("WAN %s: floor (unique bytes / link) %.2f s" % (args.wan, floor),
                  flush=True)
        runners = {"ours": lambda d, ph: run_ours(via, d, seeded, workdir, args.jobs),
                   "ours-standalone": lambda d, ph: run_ours_standalone(
                       via, d, seeded, workdir, args.jobs),
                   "ours-library": lambda d, ph: run_ours_library(via, d, seeded, workdir,
                                                                  args.jobs),
                   "skopeo-sync": lambda d, ph: run_sync(via, d, seeded, workdir),
                   "skopeo-copy": lambda d, ph: run_copy(via, d, seeded, workdir),
                   "reference": lambda d, ph: run_reference(via, seeded, streams, ph)}
        # Rounds interleave the tools so that load from other processes on
        # the machine spreads over all of them; the median is reported.
        samples = collections.defaultdict(list)
        for rnd in range(args.repeat):
            for tool in tools:
                name = "dest-%s-%d" % (tool, rnd)
                dst = registry(name)
                for phase in ("first", "rerun"):
                    counter = registry_log.RequestCounter(dst)
                    CPU.clear()
                    before = cpu_seconds(src.pid), cpu_seconds(dst.pid)
                    seen = (proxy.connections, proxy.bytes_down) if proxy else (0, 0)
                    timeline = None
                    if proxy and profile[1] and args.timeline and tool in ("ours", "ours-standalone"):
                        with Timeline(proxy, profile[1], dst) as timeline:
                            wall, rss, _ = runners[tool](dst, phase)
                    else:
                        wall, rss, _ = runners[tool](dst, phase)
                    stats = dest_stats(counter, seeded.blobs)
                    stats.update(wall_seconds=round(wall, 2),
                                 peak_rss_mib=round(rss / 1024.0, 1),
                                 cpu_tool=round(CPU.get("tool", 0.0), 2),
                                 cpu_source_registry=round(cpu_seconds(src.pid) - before[0], 2),
                                 cpu_dest_registry=round(cpu_seconds(dst.pid) - before[1], 2),
                                 load=os.getloadavg()[0])
                    wan_note = ""
                    if proxy:
                        stats.update(source_connections=proxy.connections - seen[0],
                                     source_bytes=proxy.bytes_down - seen[1])
                        wan_note = "  source: %d connections, %.1f MiB read" % (
                            stats["source_connections"], stats["source_bytes"] / 2.0 ** 20)
                    samples["%s/%s" % (tool, phase)].append(stats)
                    print("round %d %-12s %-5s %7.2f s  committed %7.1f MiB in %3d uploads  "
                          "%5d requests (%d manifest HEAD, %d manifest PUT)  "
                          "peak RSS %6.1f MiB  CPU s tool %.2f src %.2f dst %.2f%s  %s" % (
                              rnd, tool, phase, wall, stats["bytes_committed"] / 2.0 ** 20,
                              stats["blob_uploads"], stats["requests"],
                              stats["manifest_heads"], stats["manifest_puts"],
                              rss / 1024.0, stats["cpu_tool"], stats["cpu_source_registry"],
                              stats["cpu_dest_registry"], wan_note, _load()), flush=True)
                    if timeline is not None:
                        print(timeline.report(), flush=True)
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
        print("\nmedian of %d rounds:  %s" % (args.repeat, _load()))
        for key, r in report.items():
            if key in ("set", "wan", "selfcheck"):
                continue
            print("%-20s %6.2f s (min %.2f, max %.2f)  %7.1f MiB committed  %5d requests  "
                  "%3d manifest HEAD  %3d manifest PUT  peak RSS %.1f MiB  "
                  "CPU s tool %.2f src %.2f dst %.2f" % (
                      key, r["wall_seconds"], r["wall_min"], r["wall_max"],
                      r["bytes_committed"] / 2.0 ** 20, r["requests"], r["manifest_heads"],
                      r["manifest_puts"], r["peak_rss_mib"], r["cpu_tool"],
                      r["cpu_source_registry"], r["cpu_dest_registry"]))
        if profile:
            report["wan"].update(_wan_ratios(report, tools, args.wan))
    finally:
        if proxy is not None:
            proxy.stop()
        for reg in started:
            reg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    print("\nmachine: %d CPUs, %s; CPU pressure from other processes (some avg60): %s; %s" % (
        os.cpu_count(), _mem(), _pressure(), _load()))


def _wan_ratios(report, tools, profile_text):
    """Print and return each tool's time against the link floor, and
    against floor + the command's start-up (the issue's targets: first run
    <= 1.10x that; a no-op re-run <= start-up + 0.5 s)."""
    floor = report["wan"]["floor_seconds"]
    startup = {}
    script = os.path.join(os.path.dirname(sys.executable), "tripleo-containers")
    if "ours" in tools:
        startup["ours"] = startup_seconds([OPENSTACK, "overcloud", "container", "image",
                                           "upload"])
    if "ours-standalone" in tools:
        startup["ours-standalone"] = startup_seconds([script, "image", "upload"])
    print("\nWAN %s: floor %.2f s; start-up (--help) %s  %s" % (
        profile_text, floor, ", ".join("%s %.2f s" % kv for kv in startup.items()) or "n/a",
        _load()))
    out = {"startup_seconds": startup, "ratios": {}}
    for tool in tools:
        first = report.get("%s/first" % tool)
        rerun = report.get("%s/rerun" % tool)
        if not first or not floor:
            continue
        up = startup.get(tool, 0.0)
        ratio = first["wall_seconds"] / floor
        ratio_up = first["wall_seconds"] / (floor + up)
        out["ratios"][tool] = dict(first_over_floor=round(ratio, 2),
                                   first_over_floor_plus_startup=round(ratio_up, 2),
                                   rerun_minus_startup=round(rerun["wall_seconds"] - up, 2))
        print("%-16s first %6.2f s = %5.2fx floor, %5.2fx (floor + start-up); "
              "re-run %5.2f s = start-up + %.2f s" % (
                  tool, first["wall_seconds"], ratio, ratio_up, rerun["wall_seconds"],
                  rerun["wall_seconds"] - up))
    return out


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
