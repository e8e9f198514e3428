#!/usr/bin/env python3
"""Benchmark the local registry and the image generator.

Measures (1) time from local.start() to /v2/ answering, median of N starts,
and (2) time to seed a Kolla-like set (default: 60 images, "bench" sizes,
~320 MiB of unique blobs) into a fresh plain-HTTP registry on loopback.
Prints one JSON document: machine, date, method, figures.

    python3 tools/bench_local_registry.py [--starts 10] [--images 60] [--sizes bench]
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import tempfile
import time

from tripleo_containers.registry import local
from tripleo_containers.testing import images, registry_log


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--starts", type=int, default=10)
    p.add_argument("--images", type=int, default=60)
    p.add_argument("--sizes", default="bench", choices=sorted(images.SIZE_PRESETS))
    p.add_argument("--fmt", default="docker", choices=sorted(images.MEDIA_TYPES))
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="bench-registry-")
    try:
        starts = []
        for i in range(args.starts):
            t = time.monotonic()
            reg = local.start("127.0.0.1:0", state_dir=os.path.join(work, "s%d" % i))
            starts.append(time.monotonic() - t)
            reg.stop()
        reg = local.start("127.0.0.1:0", state_dir=os.path.join(work, "seed"))
        counter = registry_log.RequestCounter(reg)
        try:
            t = time.monotonic()
            seeded = images.seed_kolla_set(reg, images=images.KOLLA_IMAGES[:args.images],
                                           sizes=args.sizes, fmt=args.fmt,
                                           workers=args.workers)
            seed_s = time.monotonic() - t
            uploads = counter.count(method="PUT", route="upload", status=201)
        finally:
            reg.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mib = seeded.unique_bytes / 2.0 ** 20
    print(json.dumps({
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "registry": "/usr/bin/docker-registry (distribution 2.8), loopback, "
                                "filesystem storage in %s" % tempfile.gettempdir()},
        "method": "start: local.start() until GET /v2/ answers, median of %d; seed: "
                  "seed_kolla_set(%d images, sizes=%s, fmt=%s, workers=%d) into a fresh "
                  "registry, wall clock incl. layer generation"
                  % (args.starts, args.images, args.sizes, args.fmt, args.workers),
        "start_seconds": {"median": round(statistics.median(starts), 4),
                          "max": round(max(starts), 4)},
        "seed": {"images": len(seeded.images), "unique_blobs": len(seeded.blobs),
                 "unique_mib": round(mib, 1), "blob_uploads": uploads,
                 "seconds": round(seed_s, 2), "mib_per_s": round(mib / seed_s, 1)},
    }, indent=2))


if __name__ == "__main__":
    main()
