"""Pure parts of tripleo_containers.registry.local: addresses and config."""
import pytest

from tripleo_containers.registry import local


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
