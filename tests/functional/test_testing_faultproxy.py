"""The fault proxy itself, in front of a real docker-registry: each fault does
what it says, decisions are reproducible, and stop() is bounded."""
import hashlib
import time

import pytest
import requests

from tripleo_containers.testing import faultproxy


@pytest.fixture
def proxied(proxies, plain_registry):
    return lambda **kw: proxies(plain_registry, **kw)


def _get(proxy, path, **kw):
    return requests.get("http://%s%s" % (proxy.address, path), verify=False,
                        timeout=10, **kw)


def _push_blob(proxy, repo, data, chunked=False):
    base = "http://%s" % proxy.address
    resp = requests.post("%s/v2/%s/blobs/uploads/" % (base, repo), verify=False, timeout=10)
    assert resp.status_code == 202, resp.text
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    body = iter([data[:10], data[10:]]) if chunked else data
    return digest, requests.put(resp.headers["Location"] + "&digest=" + digest, data=body,
                                verify=False, timeout=10)


def test_status_faults_then_pass_through(proxied, request_counter, plain_registry):
    proxy = proxied(schedule={0: "503", 1: "429-retry-after", 2: "429", 3: "500",
                              4: "502"})
    counter = request_counter(plain_registry)
    statuses = [_get(proxy, "/v2/") for _ in range(6)]
    assert [r.status_code for r in statuses] == [503, 429, 429, 500, 502, 200]
    assert statuses[1].headers["Retry-After"] == "1"
    assert "Retry-After" not in statuses[2].headers
    # injected answers never reached the registry
    assert counter.count(route="base") == 1
    assert proxy.counts == {"503": 1, "429-retry-after": 1, "429": 1, "500": 1, "502": 1}


def test_each_fault_shape(proxied):
    data = b"z" * 5000
    proxy = proxied()
    digest, resp = _push_blob(proxy, "ns/x", data)
    assert resp.status_code == 201

    proxy = proxied(schedule={0: "reset"})
    with pytest.raises(requests.exceptions.ConnectionError):
        _get(proxy, "/v2/")

    proxy = proxied(schedule={0: "truncate"})
    try:
        body = _get(proxy, "/v2/ns/x/blobs/" + digest).content
    except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError):
        body = b""  # urllib3 2 raises on a short body; 1.26 returns it short
    assert len(body) < len(data)
    assert proxy.counts["truncate"] == 1

    proxy = proxied(schedule={0: "stall"}, stall_seconds=0.6)
    started = time.monotonic()
    assert _get(proxy, "/v2/ns/x/blobs/" + digest).content == data
    assert time.monotonic() - started >= 0.5


def test_drop_after_commit_loses_only_the_answer(proxied, plain_registry, request_counter):
    counter = request_counter(plain_registry)
    proxy = proxied(decide=lambda req: "drop" if req.method == "PUT" else None)
    data = b"committed but unanswered"
    with pytest.raises(requests.exceptions.ConnectionError):
        _push_blob(proxy, "ns/x", data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    # the registry did commit it
    assert counter.count(method="PUT", route="upload", status=201) == 1
    head = requests.head("%s/v2/ns/x/blobs/%s" % (plain_registry.url, digest), verify=False)
    assert head.status_code == 200
    assert proxy.faulted("drop", method="PUT")[0].status == 201


def test_chunked_request_body_is_forwarded_intact(proxied, plain_registry):
    proxy = proxied()
    data = bytes(range(256)) * 40
    digest, resp = _push_blob(proxy, "ns/chunked", data, chunked=True)
    assert resp.status_code == 201, resp.text
    got = requests.get("%s/v2/ns/chunked/blobs/%s" % (plain_registry.url, digest),
                       verify=False)
    assert got.content == data


def test_decisions_reproducible_and_bounded_per_key(proxied):
    rules = [faultproxy.Rule("503", rate=0.5)]
    runs = []
    for _ in range(2):
        proxy = proxied(rules=rules, seed=42, max_per_key=2)
        runs.append([_get(proxy, "/v2/ns/r%d/tags/list" % (i % 5)).status_code
                     for i in range(40)])
    assert runs[0] == runs[1]
    assert 503 in runs[0] and 404 in runs[0]
    # never more than 2 faults for one key (same path)
    for i in range(5):
        assert [s for n, s in enumerate(runs[0]) if n % 5 == i].count(503) <= 2
    other = proxied(rules=rules, seed=7, max_per_key=2)
    assert [_get(other, "/v2/ns/r%d/tags/list" % (i % 5)).status_code
            for i in range(40)] != runs[0]


def test_hang_is_bounded_by_stop(proxied):
    proxy = proxied(rules=[faultproxy.Rule("hang")], max_per_key=None, hang_seconds=60)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get("http://%s/v2/" % proxy.address, timeout=0.5, verify=False)
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 3


def test_rule_filters_and_unknown_fault(proxied):
    with pytest.raises(ValueError):
        faultproxy.Rule("explode")
    proxy = proxied(rules=[faultproxy.Rule("503", methods=["PUT"], routes=["manifest"])],
                    max_per_key=None)
    assert _get(proxy, "/v2/").status_code == 200
    resp = requests.put("http://%s/v2/ns/x/manifests/t" % proxy.address, data=b"{}",
                        verify=False, timeout=10)
    assert resp.status_code == 503
    assert proxy.requests[-1].route == "manifest"
