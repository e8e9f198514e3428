#!/usr/bin/env python3
"""Seed a local "upstream" registry with small Kolla-like images.

Reads an images file written by prepare and pushes, for every image in it, a
Kolla-like image (shared base layers, real tar.gz layers, labels) under the
same name, so the demo can then copy exactly what prepare selected.
Usage: demo_seed.py IMAGES_FILE NAMESPACE PREFIX TAG
"""
import sys

import yaml

from tripleo_containers.registry import reference
from tripleo_containers.testing import images


def main(images_file, namespace, prefix, tag):
    entries = yaml.safe_load(open(images_file))["container_images"]
    refs = [reference.parse(e["imagename"]) for e in entries]
    registry = refs[0].registry
    ns_path = namespace.split("/", 1)[1]
    head = "%s/%s" % (ns_path, prefix)
    names = []
    for ref in refs:
        if ref.registry != registry or not ref.repository.startswith(head) or ref.tag != tag:
            sys.exit("demo_seed: %s is not %s/%s<name>:%s" % (ref, namespace, prefix, tag))
        names.append(ref.repository[len(head):])
    seeded = images.seed_kolla_set("http://%s" % registry, namespace=ns_path, prefix=prefix,
                                   tag=tag, images=names, sizes="small", verify=False)
    print("seeded %d images (%d unique blobs, %.1f MiB) into %s" % (
        len(names), len(seeded.blobs), seeded.unique_bytes / 2.0 ** 20, registry))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
