"""Pure parts of tripleo_containers.registry.local: addresses, config, log parsing."""
import json

import pytest

from tripleo_containers.registry import local

COMBINED = ('127.0.0.1 - - [22/Nov/2026:19:32:15 +0000] "PUT /v2/ns/a/b/blobs/uploads/'
            'a2fb?_state=x&digest=sha256:ab HTTP/1.1" 201 0 "" "python-requests/2.34.2"')
JSON_LINE = json.dumps({
    "http.request.method": "HEAD", "http.request.uri": "/v2/ns/img/blobs/sha256:" + "a" * 64,
    "http.response.status": 404, "http.response.written": 157, "level": "info",
    "http.request.useragent": "skopeo/1.9.3", "msg": "response completed with error"})


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:8787", ("127.0.0.1", 8787)),
    (":5000", ("127.0.0.1", 5000)),
    ("[::1]:8787", ("::1", 8787)),
    ("192.168.24.1:0", ("192.168.24.1", 0)),
])
def test_split_address(text, expected):
    assert local.split_address(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1", "host:port", "1.2.3.4:70000", "", "::1:80"])
def test_split_address_rejects(text):
    with pytest.raises(local.LocalRegistryError):
        local.split_address(text)


def test_parse_combined_and_json_lines():
    e = local.parse_log_line(COMBINED)
    assert (e.method, e.path, e.status, e.size) == (
        "PUT", "/v2/ns/a/b/blobs/uploads/a2fb", 201, 0)
    assert "digest=sha256:ab" in e.query
    assert local.route_of(e.path) == "upload"
    j = local.parse_log_line(JSON_LINE)
    assert (j.method, j.status, j.user_agent) == ("HEAD", 404, "skopeo/1.9.3")
    assert local.route_of(j.path) == "blob"
    assert local.parse_log_line('{"level": "info", "msg": "listening on 127.0.0.1:1"}') is None
    assert local.parse_log_line("garbage") is None


@pytest.mark.parametrize("path,route", [
    ("/v2/", "base"), ("/v2/_catalog", "catalog"), ("/v2/a/b/tags/list", "tags"),
    ("/v2/a/b/manifests/latest", "manifest"), ("/v2/a/b/manifests/sha256:" + "0" * 64, "manifest"),
    ("/v2/a/blobs/uploads/", "upload"), ("/v2/a/blobs/sha256:" + "f" * 64, "blob"),
    ("/metrics", None),
])
def test_routes(path, route):
    assert local.route_of(path) == route


def test_filter_entries():
    entries = local.parse_log([COMBINED, JSON_LINE, COMBINED.replace('" 201 ', '" 400 ')])
    assert local.count_requests(entries, method="PUT") == 2
    assert local.count_requests(entries, method="PUT", status=201) == 1
    assert local.count_requests(entries, status="4xx") == 2
    assert local.count_requests(entries, status=(201, 404)) == 2
    assert local.count_requests(entries, route="blob") == 1
    assert local.count_requests(entries, path=r"^/v2/ns/a/b/", query="digest=") == 2


def test_config_has_no_secret_and_options_map():
    cfg = local.build_config("127.0.0.1:5000", "/s", tls_cert="/c", tls_key="/k",
                             htpasswd="/h", mirror_url="https://up", mirror_username="u",
                             delete_enabled=True)
    assert cfg["http"]["addr"] == "127.0.0.1:5000"
    assert "secret" not in cfg["http"]
    assert cfg["http"]["tls"] == {"certificate": "/c", "key": "/k"}
    assert cfg["auth"]["htpasswd"]["path"] == "/h"
    assert cfg["proxy"] == {"remoteurl": "https://up", "username": "u"}
    assert cfg["storage"]["delete"] == {"enabled": True}
    assert "cache" not in cfg["storage"]  # stale after deletes
    assert cfg["log"]["formatter"] == "json"
    assert local.build_config("127.0.0.1:5000", "/s")["storage"]["cache"]
    env = local.registry_env("s", "p", base={})
    assert env == {"REGISTRY_HTTP_SECRET": "s", "REGISTRY_PROXY_PASSWORD": "p"}
    with pytest.raises(local.LocalRegistryError, match="both"):
        local.build_config("127.0.0.1:5000", "/s", tls_cert="/c")
