"""`image list` against a registry whose _catalog paging never ends (a
fake: a real registry cannot be made to do it): it stops at the documented
bound with one line, after a bounded number of requests."""
import json

from osc_cli import openstack
from tripleo_containers.registry import client as client_mod


def _endless(loop=False):
    """A _catalog that always has a next page (or whose next page is itself)."""
    def fault(req):
        if not req.path.endswith("/_catalog"):
            return None
        start = int(req.query.get("last") or 0)
        names = ["ns/r%09d" % i for i in range(start, start + 1000)]
        link = req.path + "?n=1000" if loop else "%s?n=1000&last=%d" % (req.path,
                                                                         start + 1000)
        return 200, {"Content-Type": "application/json",
                     "Link": '<%s>; rel="next"' % link}, json.dumps(
            {"repositories": names}).encode()
    return fault


def _list(fake):
    return openstack("overcloud", "container", "image", "list", "--registry", fake.address,
                     "--insecure-registry", fake.address, timeout=120)


def test_catalog_that_never_ends_stops_at_the_bound(fake):
    fake.faults.append(_endless())
    proc = _list(fake)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert ("the repositories listing of %s does not end (101000 entries in 101 "
            "pages); stopped at the limit of %d entries or %d pages" % (
                fake.address, client_mod.MAX_LISTING, client_mod.MAX_PAGES)) in lines[0]
    pages = len(fake.requests("GET", "_catalog"))
    assert pages == client_mod.MAX_LISTING // 1000 + 1


def test_catalog_whose_next_page_is_itself_stops_at_once(fake):
    fake.faults.append(_endless(loop=True))
    proc = _list(fake)
    assert proc.returncode == 1
    assert "its next page is one already read" in proc.stderr
    assert len(fake.requests("GET", "_catalog")) == 1
