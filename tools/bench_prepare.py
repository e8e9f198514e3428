#!/usr/bin/env python3
"""How long prepare takes, against `openstack --version` on the same machine.

Runs each command N times (after one warm-up) and reports the median and
min wall time, plus the library's own time in-process (imports + render +
filter + env build). Usage: tools/bench_prepare.py [--runs N] [--openstack PATH]
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wall(cmd, runs):
    times = []
    for i in range(runs + 1):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i:
            times.append(time.perf_counter() - t)
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--openstack", default=os.path.join(os.path.dirname(sys.executable),
                                                        "openstack"))
    args = ap.parse_args()
    envs = ["-e", os.path.join(ROOT, "environments", "docker.yaml"),
            "-e", os.path.join(ROOT, "environments", "docker-ha.yaml")]
    out = tempfile.mkdtemp()
    prepare = [args.openstack, "overcloud", "container", "image", "prepare",
               "--push-destination", "192.168.24.1:8787"] + envs + [
        "--output-env-file", os.path.join(out, "e.yaml"),
        "--output-images-file", os.path.join(out, "i.yaml"), "-f", "value"]
    rows = [
        ("openstack --version", wall([args.openstack, "--version"], args.runs)),
        ("openstack overcloud container image prepare --help",
         wall([args.openstack, "overcloud", "container", "image", "prepare", "--help"],
              args.runs)),
        ("prepare, full catalog, service filter, both files", wall(prepare, args.runs)),
        ("tripleo-containers image prepare (same arguments)",
         wall([os.path.join(os.path.dirname(args.openstack), "tripleo-containers"),
               "image"] + prepare[4:], args.runs)),
    ]
    code = ("import time; t=time.perf_counter();"
            "from tripleo_containers.prepare import core, output;"
            "r=core.prepare(core.Request(push_destination='192.168.24.1:8787',"
            " env_files=%r)); output.env_file(r, 'x'); output.images_file(r);"
            "print(time.perf_counter()-t, len(r.images), len(r.params))" % envs[1::2])
    lib = []
    for _ in range(args.runs):
        res = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                             text=True).stdout.split()
        lib.append(float(res[0]))
    print("machine: %s, %d cores, Python %s; %s; median of %d runs (min)"
          % (platform.platform(), os.cpu_count(), platform.python_version(),
             time.strftime("%Y-%m-%d"), args.runs))
    for name, (med, mn) in rows:
        print("  %-52s %.3f s (%.3f)" % (name, med, mn))
    print("  %-52s %.3f s (%.3f)  [%s images, %s parameters]"
          % ("library in-process: imports + prepare + both texts",
             statistics.median(lib), min(lib), res[1], res[2]))
    base = rows[0][1][0]
    print("  prepare minus --version: %.3f s; minus prepare --help: %.3f s"
          % (rows[2][1][0] - base, rows[2][1][0] - rows[1][1][0]))


if __name__ == "__main__":
    main()
