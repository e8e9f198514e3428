"""Test tooling: the access-log request counter (tests and benchmarks prove
what a client did by what a real registry served). The other tools' own
tests are tests/functional/test_testing_*.py."""
import hashlib
import json

import pytest
import requests

from tripleo_containers.testing import registry_log

COMBINED = ('127.0.0.1 - - [22/Nov/2026:19:32:15 +0000] "PUT /v2/ns/a/b/blobs/uploads/'
            'a2fb?_state=x&digest=sha256:ab HTTP/1.1" 201 0 "" "python-requests/2.34.2"')
JSON_LINE = json.dumps({
    "http.request.method": "HEAD", "http.request.uri": "/v2/ns/img/blobs/sha256:" + "a" * 64,
    "http.response.status": 404, "http.response.written": 157, "level": "info",
    "http.request.useragent": "skopeo/1.9.3", "msg": "response completed with error"})


def count(entries, **criteria):
    return len(registry_log.filter_entries(entries, **criteria))


def test_parse_combined_and_json_lines():
    e = registry_log.parse_log_line(COMBINED)
    assert (e.method, e.path, e.status, e.size) == (
        "PUT", "/v2/ns/a/b/blobs/uploads/a2fb", 201, 0)
    assert "digest=sha256:ab" in e.query
    assert registry_log.route_of(e.path) == "upload"
    j = registry_log.parse_log_line(JSON_LINE)
    assert (j.method, j.status, j.user_agent) == ("HEAD", 404, "skopeo/1.9.3")
    assert registry_log.route_of(j.path) == "blob"
    startup = '{"level": "info", "msg": "listening on 127.0.0.1:1"}'
    assert registry_log.parse_log_line(startup) is None
    assert registry_log.parse_log_line("garbage") is None


@pytest.mark.parametrize("path,route", [
    ("/v2/", "base"), ("/v2/_catalog", "catalog"), ("/v2/a/b/tags/list", "tags"),
    ("/v2/a/b/manifests/latest", "manifest"), ("/v2/a/b/manifests/sha256:" + "0" * 64, "manifest"),
    ("/v2/a/blobs/uploads/", "upload"), ("/v2/a/blobs/sha256:" + "f" * 64, "blob"),
    ("/metrics", None),
])
def test_routes(path, route):
    assert registry_log.route_of(path) == route


def test_filter_entries():
    entries = registry_log.parse_log([COMBINED, JSON_LINE, COMBINED.replace('" 201 ', '" 400 ')])
    assert count(entries, method="PUT") == 2
    assert count(entries, method="PUT", status=201) == 1
    assert count(entries, status="4xx") == 2
    assert count(entries, status=(201, 404)) == 2
    assert count(entries, route="blob") == 1
    assert count(entries, path=r"^/v2/ns/a/b/", query="digest=") == 2


def test_counter_counts_what_a_real_registry_served_without_its_probes(plain_registry,
                                                                      request_counter):
    reg = plain_registry
    since_start = request_counter(reg)
    since_start.mark = 0
    # the readiness probes of local.start are in the log but not counted
    assert registry_log.parse_log(reg.access_log) and since_start.count() == 0
    counter = request_counter(reg)
    assert requests.get(reg.url + "/v2/").status_code == 200
    data = b"hello"
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post("%s/v2/ns/img/blobs/uploads/" % reg.url)
    loc = requests.compat.urljoin(r.url, r.headers["Location"])
    assert requests.put(loc, params={"digest": digest}, data=data).status_code == 201
    assert requests.head("%s/v2/ns/img/blobs/%s" % (reg.url, digest)).status_code == 200
    assert requests.head("%s/v2/other/blobs/%s" % (reg.url, digest)).status_code == 404
    assert counter.count(route="base") == 1
    assert counter.count(method="POST", route="upload", status=202) == 1
    assert counter.count(method="PUT", route="upload", status=201, query="digest=") == 1
    assert counter.count(method="HEAD", route="blob", status=200) == 1
    assert counter.count(route="blob", status="4xx") == 1
    assert counter.count(path=r"^/v2/ns/img/") == 3
    assert since_start.count() == counter.count() == 5
    counter.reset()
    assert counter.count() == 0
