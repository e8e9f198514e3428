"""TLS and cross-host rules, with the real CLI against real registries:
verification on by default with an actionable message, insecure only for the
registries named, no silent https -> http downgrade, and no Authorization
header sent to a host a registry redirects to."""
import yaml

from osc_cli import openstack
from test_secrets import BearerGateway, PASSWORD, SIGNATURE, TOKEN, USER, creds_file
from tripleo_containers.testing import images


def _list(registry, *extra):
    return openstack("overcloud", "container", "image", "list", "--registry", registry,
                     *extra)


def _one_clear_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


def test_self_signed_registry_fails_with_how_to_fix(tls_auth_registry, plain_registry,
                                                    request_counter, tmp_path):
    reg = tls_auth_registry
    counter = request_counter(reg)
    proc = _list(reg.address)
    _one_clear_error(proc, "--ca-bundle", "--insecure-registry", reg.address)
    # marking *another* registry insecure changes nothing for this one
    proc = _list(reg.address, "--insecure-registry", plain_registry.address)
    _one_clear_error(proc, "--ca-bundle")
    assert counter.count() == 0  # the handshake failed: no request was served
    # with its CA it works
    creds = creds_file(tmp_path / "c.yaml", {reg.address: (reg.username, reg.password)})
    proc = _list(reg.address, "--ca-bundle", "%s=%s" % (reg.address, reg.ca_cert),
                 "--registry-credentials", creds)
    assert proc.returncode == 0, proc.stderr


def test_upload_verifies_destination_even_when_source_is_insecure(
        plain_registry, tls_auth_registry, request_counter, tmp_path):
    src, dst = plain_registry, tls_auth_registry
    seeded = images.seed_kolla_set(src.url, "tripleo", "centos-binary-", "t1",
                                   images=["keystone"], sizes="tiny")
    path = tmp_path / "images.yaml"
    with open(path, "w") as f:
        yaml.safe_dump({"container_images": [
            {"imagename": seeded.images["keystone"].reference,
             "push_destination": dst.address}], "insecure_registries": [src.address]}, f)
    counter = request_counter(dst)
    proc = openstack("overcloud", "container", "image", "upload", "--config-file", path)
    _one_clear_error(proc, "1 of 1 images failed", "--ca-bundle", dst.address)
    assert counter.count() == 0


def test_plain_http_registry_not_marked_insecure_is_never_used_over_http(
        plain_registry, request_counter):
    reg = plain_registry
    counter = request_counter(reg)
    proc = _list(reg.address)
    _one_clear_error(proc, reg.address, "--insecure-registry")
    # https was tried and failed; nothing fell back to plain http
    assert counter.count() == 0


def test_tls_registry_marked_insecure_fails_rather_than_skipping_verification(
        tls_auth_registry, request_counter):
    reg = tls_auth_registry
    counter = request_counter(reg)
    proc = _list(reg.address, "--insecure-registry", reg.address)
    _one_clear_error(proc, reg.address)
    assert counter.count(status="2xx") == 0


def test_authorization_never_sent_to_redirect_host(plain_registry, registry_factory,
                                                   skopeo, tmp_path):
    backing, dst = registry_factory(), plain_registry
    seeded = images.seed_kolla_set(backing.url, "tripleo", "centos-binary-", "t1",
                                   images=["keystone", "nova-api"], sizes="tiny")
    gw = BearerGateway(backing.address, redirect_blobs=True)
    try:
        creds = creds_file(tmp_path / "c.yaml", {gw.address: (USER, PASSWORD)})
        path = tmp_path / "images.yaml"
        with open(path, "w") as f:
            yaml.safe_dump({"container_images": [
                {"imagename": "%s/%s:t1" % (gw.address, img.repository),
                 "push_destination": dst.address} for img in seeded.images.values()],
                "insecure_registries": [gw.address, dst.address]}, f)
        log = tmp_path / "upload.log"
        proc = openstack("--debug", "--log-file", log, "overcloud", "container", "image",
                         "upload", "--config-file", path, "--registry-credentials", creds)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(gw.storage_auth) == len(seeded.blobs)  # every blob came via storage
        assert gw.storage_auth == [None] * len(seeded.blobs)
        for img in seeded.images.values():
            assert skopeo.inspect(dst, "%s:t1" % img.repository)["Digest"] == img.digest
        # the signed storage URL's signature is redacted in the debug output
        text = proc.stdout + proc.stderr + log.read_text()
        for secret in (SIGNATURE, TOKEN, PASSWORD):
            assert secret not in text
    finally:
        gw.stop()


def test_upload_through_an_http_proxy(plain_registry, tls_auth_registry, request_counter,
                                      skopeo, tmp_path):
    """http_proxy/https_proxy are honoured like curl and requests do: plain
    HTTP as absolute-URI requests, HTTPS tunnelled with CONNECT (so TLS is
    still verified against the registry and its credentials never reach the
    proxy in clear), NO_PROXY excluded."""
    from http_proxy import ForwardProxy
    src, dst = plain_registry, tls_auth_registry
    seeded = images.seed_kolla_set(src.url, "tripleo", "centos-binary-", "t1",
                                   images=["keystone", "glance-api"], sizes="tiny")
    path = tmp_path / "images.yaml"
    with open(path, "w") as f:
        yaml.safe_dump({"container_images": [
            {"imagename": img.reference, "push_destination": dst.address}
            for img in seeded.images.values()], "insecure_registries": [src.address]}, f)
    creds = creds_file(tmp_path / "c.yaml", {dst.address: (dst.username, dst.password)})
    proxy = ForwardProxy()
    try:
        env = {"http_proxy": "http://" + proxy.address, "https_proxy": "http://" + proxy.address,
               "no_proxy": "", "NO_PROXY": ""}
        proc = openstack("overcloud", "container", "image", "upload", "--config-file", path,
                         "--ca-bundle", "%s=%s" % (dst.address, dst.ca_cert),
                         "--registry-credentials", creds, env=env)
        assert proc.returncode == 0, proc.stderr
        plain = [target for method, target, _ in proxy.seen() if method != "CONNECT"]
        tunnels = [target for method, target, _ in proxy.seen("CONNECT")]
        assert plain and all(t.startswith("http://%s/v2/" % src.address) for t in plain)
        assert tunnels and set(tunnels) == {dst.address}
        assert not any(PASSWORD in str(h) or dst.password in str(h)
                       for _, _, h in proxy.seen())
        for img in seeded.images.values():
            assert skopeo.inspect(dst, img.repository + ":t1")["Digest"] == img.digest
        # the same upload with the destination in NO_PROXY: nothing tunnelled
        del proxy.requests[:]
        env["no_proxy"] = env["NO_PROXY"] = dst.address.split(":")[0]
        counter = request_counter(dst)
        proc = openstack("overcloud", "container", "image", "upload", "--config-file", path,
                         "--ca-bundle", "%s=%s" % (dst.address, dst.ca_cert),
                         "--registry-credentials", creds, env=env)
        assert proc.returncode == 0, proc.stderr
        # a re-run: one HEAD per image (the first ones, sent beside the
        # ping without credentials, were refused with a 401 and sent again)
        assert proxy.seen("CONNECT") == [] and counter.count(route="manifest", status=200) == 2
        assert counter.count(route="manifest") == counter.count(route="manifest", method="HEAD")
    finally:
        proxy.close()
