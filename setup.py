"""Installs the data folders beside the package.

heat-templates/, environments/ and container-images/ are what users pass to
`openstack overcloud deploy` and what prepare renders, so they are installed as
data under <prefix>/share/tripleo-containers/, keeping their tree, where
tripleo_containers.data finds them after a plain `pip install`.
"""
import os

import setuptools

DATA_DIRS = ("container-images", "environments", "heat-templates")
SHARE = os.path.join("share", "tripleo-containers")


def data_files():
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    for top in DATA_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(here, top)):
            dirnames.sort()
            files = sorted(
                os.path.relpath(os.path.join(dirpath, f), here)
                for f in filenames if not f.startswith("."))
            if files:
                rel = os.path.relpath(dirpath, here)
                out.append((os.path.join(SHARE, rel), files))
    return out


setuptools.setup(data_files=data_files())
