"""Transport and client against the in-process fake: sequences and faults."""
import json
import socket
import subprocess
import sys
import threading

import pytest

from fake_registry import DOCKER_MANIFEST, FakeRegistry, Storage, digest_of
from tripleo_containers.registry import client as client_mod
from tripleo_containers.registry import credentials, errors, reference, transport


def make_client(reg, keychain=None, sleeps=None, retries=3):
    sleeps = [] if sleeps is None else sleeps
    tr = transport.Transport(keychain=keychain, insecure=[reg.address], retries=retries,
                             sleep=sleeps.append, timeout=(5, 10))
    return client_mod.Client(tr)


def ref(reg, text):
    return reference.parse("%s/%s" % (reg.address, text))


def keychain_for(reg, password=None):
    return credentials.Keychain(
        explicit={reg.address: (reg.username, password or reg.password)},
        explicit_source="creds.yaml", files=[])


def test_ping_once_and_full_accept_list(fake):
    fake.add_image("ns/a", "t", [b"layer"])
    c = make_client(fake)
    c.head_manifest(ref(fake, "ns/a:t"))
    c.get_manifest(ref(fake, "ns/a:t"))
    # the first request goes out beside the ping: either may arrive first
    assert sorted(fake.sequence()[:2]) == ["GET /v2/", "HEAD /v2/ns/a/manifests/t"]
    assert fake.sequence()[2:] == ["GET /v2/ns/a/manifests/t"]
    for r in fake.log:
        if r.path == "/v2/":
            continue
        accept = r.headers["Accept"]
        for mtype in (client_mod.OCI_INDEX, client_mod.DOCKER_LIST,
                      client_mod.OCI_MANIFEST, client_mod.DOCKER_MANIFEST):
            assert mtype in accept


def test_first_request_does_not_wait_for_the_ping(fake):
    # On a long RTT a re-run is its first HEADs: they must not queue behind
    # the ping's round trips. The fake holds the ping until the HEAD came.
    fake.add_image("ns/a", "t", [b"layer"])
    head_came = threading.Event()
    held = []

    def hold_ping(req):
        if req.path == "/v2/":
            held.append(head_came.wait(5))
        elif "/manifests/" in req.path:
            head_came.set()
    fake.faults.append(hold_ping)
    assert make_client(fake).head_manifest(ref(fake, "ns/a:t")).digest
    assert held == [True]


def test_request_beside_the_ping_sends_no_credentials_and_trusts_no_refusal():
    # A registry may hide a private repository from anonymous clients with a
    # 404: the answer to the credential-less first request is not taken.
    reg = FakeRegistry(auth="basic")
    try:
        reg.add_image("ns/a", "t", [b"layer"])

        def hide(req):
            if "/manifests/" in req.path and "Authorization" not in req.headers:
                return 404, {}, b""
        reg.faults.append(hide)
        assert make_client(reg, keychain_for(reg)).head_manifest(ref(reg, "ns/a:t"))
        heads = reg.requests("HEAD")
        assert len(heads) == 2
        assert "Authorization" not in heads[0].headers
        assert heads[1].headers["Authorization"].startswith("Basic ")
    finally:
        reg.close()


def test_manifest_bytes_kept_exactly_and_pushed_with_media_type(fake):
    data = fake.add_image("ns/a", "t", [b"layer"])
    c = make_client(fake)
    m = c.get_manifest(ref(fake, "ns/a:t"))
    assert m.data == data and m.digest == digest_of(data)
    assert m.media_type == DOCKER_MANIFEST
    assert [b.digest for b in m.blobs][1] == digest_of(b"layer")
    c.put_manifest(ref(fake, "ns/a:copy"), m)
    put = fake.requests("PUT")[0]
    assert put.body == data and put.headers["Content-Type"] == DOCKER_MANIFEST


def test_manifest_digest_mismatch_is_refused(fake):
    fake.add_image("ns/a", "t", [b"layer"])
    lie = "sha256:" + "0" * 64

    def wrong_digest(req):
        if req.method == "GET" and "/manifests/" in req.path:
            status, headers, body = fake.handle(req)
            headers["Docker-Content-Digest"] = lie
            return status, headers, body
    fake.faults.append(wrong_digest)
    with pytest.raises(errors.DigestMismatch) as exc:
        make_client(fake).get_manifest(ref(fake, "ns/a:t"))
    assert lie in str(exc.value)


def test_schema1_is_a_clear_error(fake):
    fake.add_manifest("ns/old", "t", json.dumps({"schemaVersion": 1, "name": "ns/old"}).encode(),
                      "application/vnd.docker.distribution.manifest.v1+prettyjws")
    with pytest.raises(errors.UnsupportedManifest) as exc:
        make_client(fake).get_manifest(ref(fake, "ns/old:t"))
    assert "schema1" in str(exc.value)


def test_oversized_manifest_is_refused(fake):
    fake.add_manifest("ns/big", "t", b"{" + b" " * (5 * 1024 * 1024) + b"}", DOCKER_MANIFEST)
    with pytest.raises(errors.TooLarge):
        make_client(fake).get_manifest(ref(fake, "ns/big:t"))


def test_retry_after_is_honoured_then_success(fake):
    fake.add_image("ns/a", "t", [b"layer"])
    answers = [(503, {"Retry-After": "2"}, b""), (429, {"Retry-After": "1"}, b"")]

    def busy(req):
        if "/manifests/" in req.path and answers:
            return answers.pop(0)
    fake.faults.append(busy)
    sleeps = []
    desc = make_client(fake, sleeps=sleeps).head_manifest(ref(fake, "ns/a:t"))
    assert desc.digest
    assert sleeps == [2.0, 1.0]
    assert len(fake.requests("HEAD")) == 3


def test_5xx_retries_are_bounded_with_growing_backoff(fake):
    fake.faults.append(lambda req: (500, {}, b"") if "/manifests/" in req.path else None)
    sleeps = []
    with pytest.raises(errors.Transient) as exc:
        make_client(fake, sleeps=sleeps, retries=3).head_manifest(ref(fake, "ns/a:t"))
    assert len(fake.requests("HEAD")) == 4
    assert len(sleeps) == 3 and sleeps[0] < sleeps[2] <= 8.0
    assert "HEAD http://%s/v2/ns/a/manifests/t" % fake.address in str(exc.value)


def test_client_errors_are_not_retried_and_read_well(fake):
    fake.add_image("ns/a", "t", [b"layer"])
    m = make_client(fake).get_manifest(ref(fake, "ns/a:t"))
    fake.repo_blobs.clear()
    sleeps = []
    with pytest.raises(errors.RegistryError) as exc:
        make_client(fake, sleeps=sleeps).put_manifest(ref(fake, "ns/x:t"), m)
    assert str(exc.value) == ("PUT http://%s/v2/ns/x/manifests/t: MANIFEST_BLOB_UNKNOWN: "
                              "blob unknown to registry" % fake.address)
    assert sleeps == [] and len(fake.requests("PUT")) == 1


def test_push_refused_by_mirror(fake):
    fake.faults.append(lambda req: (405, {"Content-Type": "application/json"}, json.dumps(
        {"errors": [{"code": "UNSUPPORTED", "message": "The operation is unsupported."}]}
    ).encode()) if req.method in ("POST", "PUT") else None)
    with pytest.raises(errors.PushRefused) as exc:
        make_client(fake).start_upload(ref(fake, "ns/a"))
    assert "UNSUPPORTED" in str(exc.value) and "mirror" in str(exc.value)


def test_basic_auth_and_unauthorized_message_names_source_not_secret():
    reg = FakeRegistry(auth="basic", password="hunter2-secret")
    try:
        reg.add_image("ns/a", "t", [b"layer"])
        assert make_client(reg, keychain_for(reg)).head_manifest(ref(reg, "ns/a:t"))
        with pytest.raises(errors.Unauthorized) as exc:
            make_client(reg, keychain_for(reg, "wrong-pass")).head_manifest(ref(reg, "ns/a:t"))
        text = str(exc.value)
        assert reg.address in text and "creds.yaml" in text
        assert "wrong-pass" not in text and "hunter2" not in text
        with pytest.raises(errors.Unauthorized) as exc:
            make_client(reg).head_manifest(ref(reg, "ns/a:t"))
        assert "none found" in str(exc.value)
    finally:
        reg.close()


def test_bearer_token_scopes_cache_and_one_reauth_on_401():
    reg = FakeRegistry(auth="bearer")
    try:
        reg.add_image("ns/a", "t", [b"layer"])
        c = make_client(reg, keychain_for(reg))
        a = ref(reg, "ns/a:t")
        c.head_manifest(a)
        c.get_manifest(a)
        tokens = reg.requests("GET", "/token")
        assert len(tokens) == 1 and tokens[0].query_all["scope"] == ["repository:ns/a:pull"]
        assert tokens[0].query["service"] == "fake"
        reg.tokens.clear()  # the registry forgets the token (expiry, restart)
        c.head_manifest(a)
        assert len(reg.requests("GET", "/token")) == 2
        assert reg.log[-1].path == "/v2/ns/a/manifests/t"
        # a mount needs pull,push on the destination and pull on the source
        c.mount_blob(ref(reg, "ns/b"), digest_of(b"layer"), a)
        assert sorted(reg.requests("GET", "/token")[-1].query_all["scope"]) == [
            "repository:ns/a:pull", "repository:ns/b:pull,push"]
        assert reg.sequence().count("GET /v2/") == 1
    finally:
        reg.close()


def test_wrong_token_credentials_are_unauthorized_without_secret():
    reg = FakeRegistry(auth="bearer")
    try:
        with pytest.raises(errors.Unauthorized) as exc:
            make_client(reg, keychain_for(reg, "bad-secret")).head_manifest(ref(reg, "ns/a:t"))
        assert "bad-secret" not in str(exc.value) and "creds.yaml" in str(exc.value)
    finally:
        reg.close()


def test_redirected_blob_get_drops_authorization_and_redacts():
    reg = FakeRegistry(auth="basic")
    store = Storage(reg)
    reg.blob_redirect = store.url
    try:
        d = reg.add_blob("ns/a", b"x" * 1000)
        c = make_client(reg, keychain_for(reg))
        resp = c.open_blob(ref(reg, "ns/a"), d)
        assert resp.content == b"x" * 1000
        assert len(store.seen) == 1 and "Authorization" not in store.seen[0]
        assert reg.log[-1].headers.get("Authorization", "").startswith("Basic ")
        assert "secret" not in errors.redact_url(resp.url)
    finally:
        store.close()
        reg.close()


@pytest.mark.parametrize("relative", [True, False])
def test_upload_post_then_one_put_with_digest_added_to_location(relative):
    reg = FakeRegistry(relative_location=relative)
    try:
        data = b"blob-bytes" * 100
        c = make_client(reg)
        c.push_blob(ref(reg, "ns/a"), digest_of(data), len(data), data)
        post, put = reg.requests("POST")[0], reg.requests("PUT")[0]
        assert post.body == b""
        assert put.query == {"_state": "abc", "digest": digest_of(data)}
        assert put.headers["Content-Length"] == str(len(data))
        assert digest_of(data) in reg.repo_blobs["ns/a"]
    finally:
        reg.close()


def test_mount_201_and_202(fake):
    d = fake.add_blob("ns/a", b"shared")
    c = make_client(fake)
    assert c.mount_blob(ref(fake, "ns/b"), d, ref(fake, "ns/a")) == (True, None)
    fake.allow_mount = False
    mounted, location = c.mount_blob(ref(fake, "ns/c"), d, ref(fake, "ns/a"))
    assert not mounted and location.startswith(fake.url + "/v2/ns/c/blobs/uploads/")
    c.copy_blob(ref(fake, "ns/a"), ref(fake, "ns/c"), d, 6, location=location)
    assert len(fake.requests("POST")) == 2  # the 202 session was used, no new POST
    assert d in fake.repo_blobs["ns/c"]


def test_streamed_copy_aborts_on_digest_mismatch(fake):
    good = b"A" * (3 * 1024 * 1024)
    d = fake.add_blob("ns/a", good)
    fake.blobs[d] = b"B" * len(good)  # corrupt at the source
    with pytest.raises(errors.DigestMismatch):
        make_client(fake).copy_blob(ref(fake, "ns/a"), ref(fake, "ns/b"), d, len(good))
    assert d not in fake.repo_blobs.get("ns/b", set())
    # the last chunk was held back: the registry never saw a complete body
    assert all(len(r.body) < len(good) for r in fake.requests("PUT"))


def test_tags_and_catalog_paginate(fake):
    for i in range(5):
        fake.add_image("ns/r%d" % i, "t%d" % i, [b"l"])
        fake.add_manifest("ns/r0", "x%d" % i, b"{}", DOCKER_MANIFEST)
    c = make_client(fake)
    tags = c.list_tags(ref(fake, "ns/r0"), page_size=2)
    assert tags == ["t0", "x0", "x1", "x2", "x3", "x4"]
    assert [r.query for r in fake.requests("GET", "/ns/r0/tags/list")] == [
        {"n": "2"}, {"n": "2", "last": "x0"}, {"n": "2", "last": "x2"}]
    assert c.catalog(fake.address, page_size=4) == ["ns/r%d" % i for i in range(5)]
    assert len(fake.requests("GET", "_catalog")) == 2
    assert c.list_tags(ref(fake, "ns/r1")) == ["t1"]
    assert fake.requests("GET", "/ns/r1/tags/list")[0].query == {"n": "1000"}


def test_delete_manifest_uses_delete_scope_and_names_the_setting():
    reg = FakeRegistry(auth="bearer")
    try:
        digest = digest_of(reg.add_image("ns/a", "t", [b"layer"]))
        c = make_client(reg, keychain_for(reg))
        with pytest.raises(client_mod.DeleteRefused) as exc:
            c.delete_manifest(ref(reg, "ns/a:t"), digest)
        assert "storage.delete.enabled: true" in str(exc.value)
        assert "mirror or pull-through" not in str(exc.value)
        assert str(exc.value).startswith("DELETE http://%s/v2/ns/a/manifests/%s: " % (
            reg.address, digest))
        assert reg.requests("GET", "/token")[-1].query_all["scope"] == [
            "repository:ns/a:delete"]
        # the scope for pull is not covered by the delete token: a new one
        c.head_manifest(ref(reg, "ns/a:t"))
        assert len(reg.requests("GET", "/token")) == 2
    finally:
        reg.close()


def test_read_blob_and_get_config_verify_and_bound(fake):
    fake.add_image("ns/a", "t", [b"layer"])
    c = make_client(fake)
    m = c.get_manifest(ref(fake, "ns/a:t"))
    config = c.get_config(ref(fake, "ns/a:t"), m)
    assert digest_of(config) == m.doc["config"]["digest"]
    digest = fake.add_blob("ns/a", b"x" * 100)
    assert c.read_blob(ref(fake, "ns/a"), digest, limit=100) == b"x" * 100
    with pytest.raises(errors.TooLarge):
        c.read_blob(ref(fake, "ns/a"), digest, limit=99)
    fake.blobs[digest] = b"y" * 100  # corrupt at the registry
    with pytest.raises(errors.DigestMismatch) as exc:
        c.read_blob(ref(fake, "ns/a"), digest)
    assert "do not hash to its digest" in str(exc.value)
    no_config = client_mod.Manifest(b'{"manifests": []}', client_mod.DOCKER_MANIFEST, "x")
    with pytest.raises(errors.UnsupportedManifest):
        c.get_config(ref(fake, "ns/a:t"), no_config)


@pytest.mark.parametrize("granted,wanted,covered", [
    (["repository:a:pull"], ["repository:a:pull"], True),
    (["repository:a:pull,push"], ["repository:a:pull"], True),
    (["repository:a:pull"], ["repository:a:pull,push"], False),
    (["repository:a:pull", "repository:b:pull"], ["repository:b:pull"], True),
    (["repository:a:pull"], ["repository:b:pull"], False),
    (["repository:a:pull", "repository:a:push"], ["repository:a:push,pull"], True),
    (["repository:a:pull,push"], ["repository:a:delete"], False),
    (["registry:catalog:*"], ["registry:catalog:*"], True),
    (["repository:ns/a:pull"], ["repository:ns:pull"], False),
])
def test_scopes_cover(granted, wanted, covered):
    assert transport.scopes_cover(granted, wanted) is covered


def test_bearer_token_reused_when_its_scopes_cover_the_request():
    reg = FakeRegistry(auth="bearer")
    try:
        for name in ("a", "b", "c"):
            reg.add_image("ns/" + name, "t", [name.encode()])
        c = make_client(reg, keychain_for(reg))
        c.transport.prefetch_token(reg.address, [
            "repository:ns/%s:pull" % n for n in ("a", "b", "c")])
        for name in ("a", "b", "c"):
            c.get_manifest(ref(reg, "ns/%s:t" % name))
        assert len(reg.requests("GET", "/token")) == 1
        c.start_upload(ref(reg, "ns/a"))  # push is not covered: its own token
        c.head_manifest(ref(reg, "ns/a:t"), push=True)  # ...which covers this
        assert len(reg.requests("GET", "/token")) == 2
        reg.tokens.clear()  # the registry forgets: refused tokens are dropped
        c.get_manifest(ref(reg, "ns/b:t"))
        c.get_manifest(ref(reg, "ns/c:t"))
        assert len(reg.requests("GET", "/token")) == 4
        assert reg.requests("GET", "/token")[-1].query_all["scope"] == [
            "repository:ns/c:pull"]
    finally:
        reg.close()


def test_prefetch_token_is_a_noop_without_bearer(fake):
    c = make_client(fake)
    c.transport.prefetch_token(fake.address, ["repository:ns/a:pull"])
    assert fake.sequence() == ["GET /v2/"]


def test_unreachable_and_tls_failure_messages():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    tr = transport.Transport(insecure=["127.0.0.1:%d" % port], retries=1, sleep=lambda s: None)
    with pytest.raises(errors.Unreachable) as exc:
        tr.request("GET", "127.0.0.1:%d" % port, "/v2/")
    assert "cannot reach 127.0.0.1:%d" % port in str(exc.value)
    reg = FakeRegistry()
    try:  # https to a plain-HTTP server: the TLS handshake fails
        tr = transport.Transport(retries=0, sleep=lambda s: None)
        with pytest.raises(errors.TLSFailure) as exc:
            tr.request("GET", reg.address, "/v2/")
        text = str(exc.value)
        assert "--ca-bundle %s=FILE" % reg.address in text
        assert "--insecure-registry %s" % reg.address in text
    finally:
        reg.close()


def test_scheme_is_https_unless_marked_insecure():
    tr = transport.Transport(insecure=["a:5000"])
    assert tr.base_url("a:5000") == "http://a:5000"
    assert tr.base_url("b:5000") == "https://b:5000"


def test_query_redaction_filter_is_installed_by_the_transport_not_by_import():
    # importing the module must leave other programs' loggers alone
    code = ("import logging, tripleo_containers.registry.transport as t\n"
            "log = logging.getLogger('urllib3.connectionpool')\n"
            "assert not log.filters, log.filters\n"
            "t.Transport(); t.Transport()\n"
            "assert log.filters == [t._REDACT_QUERY], log.filters\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr


def _slow_body_server(body_plan):
    """A one-shot HTTP server: headers announcing 100 bytes, then
    ``body_plan`` [(bytes, pause seconds), ...]; returns (address, stop,
    list of connections served)."""
    import threading
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(10)
    stop = threading.Event()
    served = []

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            served.append(conn)
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                             b"Content-Type: application/octet-stream\r\n\r\n")
                try:
                    for data, pause in body_plan:
                        conn.sendall(data)
                        if stop.wait(pause):
                            break
                    stop.wait(10)
                except OSError:
                    pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close():
        stop.set()
        listener.close()
        thread.join(5)
    return "127.0.0.1:%d" % listener.getsockname()[1], close, served


@pytest.mark.parametrize("plan, text", [
    ([(b"x" * 10, 30)], "no byte for 1 s after 10 bytes"),          # silence
    ([(b"x", 0.3)] * 60, "stalled: "),                               # a trickle
])
def test_a_stalled_body_fails_as_stalled_and_is_not_retried(plan, text):
    address, close, served = _slow_body_server(plan)
    try:
        tr = transport.Transport(insecure=[address], retries=3, timeout=1,
                                 min_rate=50, sleep=lambda s: None)
        tr._state(address).pinged = True  # no /v2/ ping: one request only
        tr._state(address).scheme = "http"
        with pytest.raises(errors.Stalled) as exc:
            client_mod.Client(tr).read_blob(reference.parse(address + "/ns/x"),
                                            "sha256:" + "1" * 64)
        assert text in str(exc.value)
        assert "GET http://%s/v2/ns/x/blobs/sha256:" % address in str(exc.value)
        assert not exc.value.temporary and len(served) == 1
    finally:
        close()


def test_a_full_disk_is_said_with_the_registry_detail_and_not_retried(fake):
    body = json.dumps({"errors": [{"code": "UNKNOWN", "message": "unknown error", "detail": {
        "DriverName": "filesystem", "Enclosed": {
            "Op": "write", "Path": "/var/lib/registry/x/startedat", "Err": 28}}}]}).encode()
    fake.faults.append(lambda req: (500, {"Content-Type": "application/json"}, body)
                       if req.method == "POST" else None)
    sleeps = []
    with pytest.raises(errors.Transient) as exc:
        make_client(fake, sleeps=sleeps).start_upload(ref(fake, "ns/a"))
    text = str(exc.value)
    assert "UNKNOWN: unknown error (write /var/lib/registry/x/startedat: no space left " \
           "on device); the registry failed to store the data" in text
    assert not exc.value.temporary and sleeps == []
    assert len(fake.requests("POST")) == 1


def test_writes_are_not_retried_after_a_run_of_5xx(fake):
    fake.faults.append(lambda req: (500, {}, b"") if req.method == "POST" else None)
    sleeps = []
    client = make_client(fake, sleeps=sleeps, retries=3)
    for _ in range(3):  # 4 tries each: 12 failed writes in a row
        with pytest.raises(errors.Transient):
            client.start_upload(ref(fake, "ns/a"))
    posts = len(fake.requests("POST"))
    assert posts == transport.WRITE_CIRCUIT + 1  # the circuit opened at the 8th
    with pytest.raises(errors.Transient) as exc:
        client.start_upload(ref(fake, "ns/a"))
    assert len(fake.requests("POST")) == posts + 1
    assert "not retrying writes" in str(exc.value) and not exc.value.temporary
