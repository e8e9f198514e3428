"""Proxies, TLS settings and connection reuse of the transport's HTTP layer."""
import base64
import os

import pytest

from http_proxy import ForwardProxy
from tripleo_containers.registry import client as client_mod
from tripleo_containers.registry import connections, errors, reference, transport


@pytest.fixture
def proxy():
    p = ForwardProxy()
    yield p
    p.close()


@pytest.fixture
def proxy_env(monkeypatch):
    """``proxy_env(**variables)`` replaces every proxy variable of the
    environment (the transport reads them like urllib, from os.environ)."""
    def set_env(**variables):
        for name in list(os.environ):
            if name.lower().endswith("_proxy") or name == "REQUEST_METHOD":
                monkeypatch.delenv(name)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
    set_env()
    return set_env


def _header(headers, name):
    found = [v for k, v in headers.items() if k.lower() == name.lower()]
    return found[0] if found else None


def client_for(reg):
    tr = transport.Transport(insecure=[reg.address], retries=0, timeout=(5, 10))
    return client_mod.Client(tr)


@pytest.mark.parametrize("environ, url, expected", [
    ({"http_proxy": "http://p:3128"}, "http://reg.example:5000", "http://p:3128"),
    ({"HTTPS_PROXY": "http://p:3128"}, "https://reg.example", "http://p:3128"),
    ({"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:1"}, "https://r", "http://low:1"),
    ({"all_proxy": "http://all:1"}, "https://r", "http://all:1"),
    ({"http_proxy": "http://p:1"}, "https://r", None),
    ({"https_proxy": "http://p:1", "no_proxy": "example.com"}, "https://reg.example.com", None),
    ({"https_proxy": "http://p:1", "no_proxy": ".example.com"}, "https://reg.example.com", None),
    ({"https_proxy": "http://p:1", "no_proxy": "example.com"}, "https://badexample.com",
     "http://p:1"),
    ({"https_proxy": "http://p:1", "NO_PROXY": "r:8787"}, "https://r:8787", None),
    ({"https_proxy": "http://p:1", "no_proxy": "r:8787"}, "https://r:443", "http://p:1"),
    ({"https_proxy": "http://p:1", "no_proxy": "10.0.0.0/8"}, "https://10.1.2.3:8787", None),
    ({"https_proxy": "http://p:1", "no_proxy": "10.0.0.0/8"}, "https://11.1.2.3", "http://p:1"),
    ({"https_proxy": "http://p:1", "no_proxy": "a, *"}, "https://anything", None),
    ({"HTTPS_PROXY": "http://up:1", "https_proxy": ""}, "https://r", None),
    ({"HTTP_PROXY": "http://up:1", "REQUEST_METHOD": "GET"}, "http://r", None),
])
def test_proxy_for_follows_the_usual_environment_rules(proxy_env, environ, url, expected):
    from urllib.parse import urlsplit
    proxy_env(**environ)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    assert connections.proxy_for(parts.scheme, parts.hostname, port) == expected


def test_tls_is_verified_against_the_ca_each_setting_names(registry_factory, proxy_env,
                                                          monkeypatch, tmp_path):
    """A real HTTPS registry signed by the session CA: trusted through
    --ca-bundle for that registry or for all, REQUESTS_CA_BUNDLE (before
    CURL_CA_BUNDLE) as a file or a hashed directory; never by default."""
    import shutil
    import subprocess
    import certifi
    reg = registry_factory(tls=True)
    hashed = tmp_path / "cas"
    hashed.mkdir()
    shutil.copy(reg.ca_cert, str(hashed / "ca.pem"))
    subprocess.run(["openssl", "rehash", str(hashed)], check=True, timeout=30)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)

    def outcome(**kw):
        tr = transport.Transport(retries=0, timeout=(5, 10), **kw)
        try:
            return tr.request("GET", reg.address, "/v2/").status_code
        except errors.TLSFailure:
            return "untrusted"
        finally:
            tr.close()

    assert outcome() == "untrusted"
    assert outcome(ca_bundles={"127.0.0.1:1": reg.ca_cert}) == "untrusted"
    assert outcome(ca_bundles={reg.address: reg.ca_cert}) == 200
    assert outcome(default_verify=reg.ca_cert) == 200
    assert outcome(default_verify=str(hashed)) == 200
    monkeypatch.setenv("CURL_CA_BUNDLE", reg.ca_cert)
    assert outcome() == 200
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    assert outcome() == "untrusted"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(hashed))
    assert outcome() == 200


def test_plain_registry_through_a_proxy_with_credentials(fake, proxy, proxy_env):
    fake.add_image("ns/a", "t", [b"layer"])
    proxy_env(http_proxy="http://puser:p%%40ss@%s" % proxy.address)
    cl = client_for(fake)
    desc = cl.head_manifest(reference.parse(fake.address + "/ns/a:t"))
    assert desc.digest
    seen = proxy.seen()
    # the ping and the first request go out at once: either may come first
    assert sorted((m, t) for m, t, _ in seen) == [
        ("GET", "http://%s/v2/" % fake.address),
        ("HEAD", "http://%s/v2/ns/a/manifests/t" % fake.address)]
    expected = "Basic " + base64.b64encode(b"puser:p@ss").decode()
    assert all(_header(h, "Proxy-Authorization") == expected for _, _, h in seen)


def test_dead_proxy_error_names_the_registry_not_the_password(fake, proxy_env):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proxy_env(http_proxy="http://puser:hunter22@127.0.0.1:%d" % port)
    cl = client_for(fake)
    with pytest.raises(errors.Unreachable) as exc:
        cl.head_manifest(reference.parse(fake.address + "/ns/a:t"))
    text = str(exc.value)
    assert fake.address in text and "hunter22" not in text
    assert fake.log == []


def test_no_proxy_goes_direct(fake, proxy, proxy_env):
    fake.add_image("ns/a", "t", [b"layer"])
    proxy_env(http_proxy="http://" + proxy.address, no_proxy="localhost,127.0.0.1")
    cl = client_for(fake)
    assert cl.head_manifest(reference.parse(fake.address + "/ns/a:t")).digest
    assert proxy.seen() == []
    assert len(fake.log) == 2


def test_unsupported_proxy_scheme_is_one_clear_error(fake, proxy_env):
    proxy_env(http_proxy="socks5://user:secret@127.0.0.1:1080")
    cl = client_for(fake)
    with pytest.raises(errors.Unreachable) as exc:
        cl.head_manifest(reference.parse(fake.address + "/ns/a:t"))
    text = str(exc.value)
    assert "socks5" in text and "http:// or https:// proxy" in text
    assert "secret" not in text


def test_connections_are_reused(fake, proxy_env):
    fake.add_image("ns/a", "t", [b"layer"])
    cl = client_for(fake)
    ref = reference.parse(fake.address + "/ns/a:t")
    for _ in range(5):
        cl.head_manifest(ref)
        cl.get_manifest(ref)
        cl.blob_exists(ref, "sha256:" + "0" * 64)
    # two connections: the ping's and the first HEAD's, sent at once;
    # every later request reuses one of them
    ports = set(r.client_port for r in fake.log)
    assert len(fake.log) == 16 and len(ports) == 2
    assert set(r.client_port for r in fake.log[:2]) == ports


def test_a_body_cut_short_is_an_interruption_not_short_data(proxy_env):
    """The server announces 100 bytes, sends 10 and closes: the client must
    not take the 10 as the body (urllib3 1.26 would, by default)."""
    import socket
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    address = "127.0.0.1:%d" % listener.getsockname()[1]

    def serve():
        for _ in range(2):
            conn, _ = listener.accept()
            request = conn.recv(65536)
            if b" /v2/ " in request.split(b"\r\n", 1)[0]:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                             b"Connection: close\r\n\r\n{}")
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            conn.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        tr = transport.Transport(insecure=[address], retries=0, timeout=(5, 5))
        cl = client_mod.Client(tr)
        with pytest.raises(errors.Interrupted) as exc:
            cl.read_blob(reference.parse(address + "/ns/x"), "sha256:" + "1" * 64)
        assert "after 10 bytes" in str(exc.value)
    finally:
        listener.close()
        thread.join(5)
