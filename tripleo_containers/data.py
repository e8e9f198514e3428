"""Where the installed data folders are.

A checkout keeps container-images/, environments/ and heat-templates/ beside
the package; a plain `pip install` puts them under <prefix>/share/tripleo-containers/
(see setup.py). The checkout wins so a developer's edits are what runs.
"""
import os
import site
import sys

SHARE = os.path.join("share", "tripleo-containers")
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _roots():
    yield _CHECKOUT
    for prefix in (sys.prefix, getattr(site, "USER_BASE", None) or "",
                   "/usr/local", "/usr"):
        if prefix:
            yield os.path.join(prefix, SHARE)


def path(*parts):
    """Absolute path of a data file or folder, e.g. path('container-images')."""
    for root in _roots():
        candidate = os.path.join(root, *parts)
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(
        "tripleo-containers data %r not found in a checkout or under "
        "<prefix>/%s; reinstall the package" % (os.path.join(*parts), SHARE))
