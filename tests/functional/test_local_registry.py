"""The local registry feature (tripleo_containers.registry.local and
`registry start|stop`), against real docker-registry processes."""
import hashlib
import os

import pytest
import requests

from tripleo_containers.registry import local


def _push_blob(reg, repo, data, **kw):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = requests.post("%s/v2/%s/blobs/uploads/" % (reg.url, repo), **kw)
    assert r.status_code == 202, r.text
    loc = requests.compat.urljoin(r.url, r.headers["Location"])
    r = requests.put(loc, params={"digest": digest}, data=data,
                     headers={"Content-Type": "application/octet-stream"}, **kw)
    assert r.status_code == 201, r.text
    return digest


def test_plain_registry_takes_a_push_and_serves_it(plain_registry):
    reg = plain_registry
    assert reg.url.startswith("http://127.0.0.1:") and reg.insecure
    assert requests.get(reg.url + "/v2/").status_code == 200
    digest = _push_blob(reg, "ns/img", b"hello")
    r = requests.get("%s/v2/ns/img/blobs/%s" % (reg.url, digest))
    assert (r.status_code, r.content) == (200, b"hello")
    assert requests.head("%s/v2/other/blobs/%s" % (reg.url, digest)).status_code == 404
    # the blob is kept in the storage directory start() was given
    assert os.listdir(reg.storage_dir) == ["docker"]


def test_tls_auth_registry_accepts_password_rejects_others(tls_auth_registry):
    reg = tls_auth_registry
    assert reg.url.startswith("https://")
    ok = requests.get(reg.url + "/v2/", auth=(reg.username, reg.password), verify=reg.ca_cert)
    assert ok.status_code == 200
    bad = requests.get(reg.url + "/v2/", auth=(reg.username, "wrong"), verify=reg.ca_cert)
    assert bad.status_code == 401
    anon = requests.get(reg.url + "/v2/", verify=reg.ca_cert)
    assert anon.status_code == 401
    assert "Basic" in anon.headers["WWW-Authenticate"]
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(reg.url + "/v2/", verify=True)
    _push_blob(reg, "ns/img", b"x" * 1000, auth=(reg.username, reg.password),
               verify=reg.ca_cert)
    assert requests.post("%s/v2/ns/img/blobs/uploads/" % reg.url, auth=(reg.username, "wrong"),
                         verify=reg.ca_cert).status_code == 401


def test_mirror_refuses_pushes_and_serves_pulls(plain_registry, registry_factory, skopeo,
                                                request_counter):
    from tripleo_containers.testing import images
    seeded = images.seed_kolla_set(plain_registry, images=["keystone"])
    upstream = request_counter(plain_registry)
    mirror = registry_factory(mirror_url=plain_registry.url)
    r = requests.post(mirror.url + "/v2/tripleo/x/blobs/uploads/", verify=False)
    assert r.status_code == 405
    assert r.json()["errors"][0]["code"] == "UNSUPPORTED"
    img = seeded.images["keystone"]
    r = requests.put(mirror.url + "/v2/%s/manifests/other" % img.repository,
                     data=img.manifest, verify=False,
                     headers={"Content-Type": img.media_type})
    assert r.status_code == 405
    info = skopeo.inspect(mirror, "%s:latest" % img.repository)
    assert info["Digest"] == img.digest
    assert info["Layers"] == img.layers
    # The pull really went through to the upstream.
    assert upstream.count(route="manifest", method="GET", status=200) >= 1


class _TokenUpstream(object):
    """A fake upstream with Bearer-token auth that records the Basic
    credentials the mirror presents at its token endpoint.  A fake because
    distribution 2.8's proxy sends upstream credentials only to a token
    realm (it cannot answer a Basic challenge), and we have no token
    server package."""

    def __init__(self):
        import http.server
        import threading
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path.startswith("/token"):
                    seen.append(self.headers.get("Authorization"))
                    body = b'{"token": "t", "access_token": "t"}'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                else:
                    body = b'{"errors": [{"code": "UNAUTHORIZED"}]}'
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Bearer realm="%s/token",'
                                     'service="fake"' % upstream_url)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        upstream_url = self.url = "http://127.0.0.1:%d" % self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_mirror_sends_upstream_credentials_from_env_not_config(registry_factory, skopeo):
    import base64
    upstream = _TokenUpstream()
    try:
        mirror = registry_factory(mirror_url=upstream.url, mirror_username="mirror-user",
                                  mirror_password="pw-from-env")
        skopeo.run("inspect", "--tls-verify=false", skopeo.ref(mirror, "library/x:1"))
        expected = "Basic " + base64.b64encode(b"mirror-user:pw-from-env").decode()
        assert expected in upstream.seen
        with open(mirror.config_path) as f:
            config_text = f.read()
        assert "pw-from-env" not in config_text
        assert '"secret"' not in config_text
    finally:
        upstream.close()


def test_delete_enabled_option(registry_factory):
    from tripleo_containers.testing import images
    for enabled, expected in ((False, 405), (True, 202)):
        reg = registry_factory(delete_enabled=enabled)
        img = images.seed_kolla_set(reg, images=["cron"]).images["cron"]
        r = requests.delete("%s/v2/%s/manifests/%s" % (reg.url, img.repository, img.digest),
                            verify=False)
        assert r.status_code == expected, r.text


def test_start_errors_are_one_clear_line(tmp_path, plain_registry):
    with pytest.raises(local.RegistryNotInstalled, match="apt-get install docker-registry"):
        local.start("127.0.0.1:0", state_dir=str(tmp_path / "a"), binary="/nonexistent/registry")
    with pytest.raises(local.AddressInUse, match="already in use"):
        local.start(plain_registry.address, state_dir=str(tmp_path / "b"))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(local.LocalRegistryError, match="bad.pem: not a PEM file"):
        local.start("127.0.0.1:0", state_dir=str(tmp_path / "c0"), tls_cert=str(bad),
                    tls_key=str(bad))
    # PEM-shaped but not a certificate: the registry itself refuses it
    bad.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(local.RegistryStartFailed, match="exited with code") as exc:
        local.start("127.0.0.1:0", state_dir=str(tmp_path / "c"), tls_cert=str(bad),
                    tls_key=str(bad))
    assert "\n" not in str(exc.value)
    with pytest.raises(local.LocalRegistryError, match="invalid registry address"):
        local.start("127.0.0.1", state_dir=str(tmp_path / "d"))


def test_stop_by_state_dir_from_another_handle(tmp_path):
    state = str(tmp_path / "state")
    reg = local.start("127.0.0.1:0", state_dir=state, detach=True)
    try:
        with pytest.raises(local.AlreadyRunning, match="stop it first"):
            local.start("127.0.0.1:0", state_dir=state)
        recorded = local.LocalRegistry.from_state_dir(state)
        assert (recorded.pid, recorded.url) == (reg.pid, reg.url)
        assert recorded.is_running()
        stopped = local.stop(state)
        assert stopped.pid == reg.pid
        assert not recorded.is_running()
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(reg.url + "/v2/", timeout=2, verify=False)
        with pytest.raises(local.NotRunning):
            local.stop(state)
    finally:
        reg.stop()


def test_start_stop_through_openstack_cli(tmp_path):
    import json
    from osc_cli import openstack
    state = str(tmp_path / "state")
    port = local.free_port()
    proc = openstack("overcloud", "container", "registry", "start", "--address",
                     "127.0.0.1:%d" % port, "--state-dir", state, "--delete-enabled",
                     "-f", "json", check=True)
    out = json.loads(proc.stdout)
    try:
        assert out["url"] == "http://127.0.0.1:%d" % port
        assert out["heat_environment"] == "DockerInsecureRegistryAddress: 127.0.0.1:%d" % port
        assert "docker_registry_insecure: yes" in out["kolla_ansible_globals"]
        # The registry outlived the CLI process.
        assert requests.get(out["url"] + "/v2/", verify=False).status_code == 200
        again = openstack("overcloud", "container", "registry", "start", "--address",
                          "127.0.0.1:%d" % port, "--state-dir", state)
        assert again.returncode == 1
        assert "already running" in again.stderr and "Traceback" not in again.stderr
        busy = openstack("overcloud", "container", "registry", "start", "--address",
                         "127.0.0.1:%d" % port, "--state-dir", str(tmp_path / "other"))
        assert busy.returncode == 1
        assert busy.stderr.strip().splitlines() == [
            "127.0.0.1:%d is already in use: stop what listens there or pick "
            "another --address" % port]
        stop = openstack("overcloud", "container", "registry", "stop", "--state-dir", state,
                         "-f", "json", check=True)
        assert json.loads(stop.stdout)["pid"] == out["pid"]
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(out["url"] + "/v2/", timeout=2, verify=False)
        again = openstack("overcloud", "container", "registry", "stop", "--state-dir", state)
        assert again.returncode == 1 and "nothing to stop" in again.stderr
    finally:
        try:
            local.stop(state)
        except local.NotRunning:
            pass


def test_cli_tls_auth_mirror_options(tmp_path, tls_material, htpasswd_file, plain_registry):
    import json
    from osc_cli import openstack
    state = str(tmp_path / "tls")
    proc = openstack("overcloud", "container", "registry", "start", "--address", "127.0.0.1:%d"
                     % local.free_port(), "--state-dir", state, "--tls-cert", tls_material.cert,
                     "--tls-key", tls_material.key, "--htpasswd", htpasswd_file,
                     "-f", "json", check=True)
    try:
        out = json.loads(proc.stdout)
        assert out["url"].startswith("https://")
        assert "docker_registry_insecure: no" in out["kolla_ansible_globals"]
        r = requests.get(out["url"] + "/v2/", verify=tls_material.ca_cert)
        assert r.status_code == 401
    finally:
        local.stop(state)
    pw = tmp_path / "pw"
    pw.write_text("ignored-by-an-anonymous-upstream\n")
    state = str(tmp_path / "mirror")
    proc = openstack("overcloud", "container", "registry", "start", "--address", "127.0.0.1:%d"
                     % local.free_port(), "--state-dir", state, "--mirror", plain_registry.url,
                     "--mirror-username", "u", "--mirror-password-file", str(pw),
                     "-f", "json", check=True)
    try:
        out = json.loads(proc.stdout)
        assert out["mode"] == "mirror of %s" % plain_registry.url
        assert requests.post(out["url"] + "/v2/a/blobs/uploads/",
                             verify=False).status_code == 405
    finally:
        local.stop(state)
    missing = openstack("overcloud", "container", "registry", "start", "--state-dir",
                        str(tmp_path / "x"), "--mirror-password-file", str(pw))
    assert missing.returncode == 1 and "need --mirror" in missing.stderr


def test_stop_escalates_to_sigkill_within_bound(tmp_path):
    import subprocess
    import time
    # A process that ignores SIGTERM stands in for a wedged registry.
    proc = subprocess.Popen(["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"])
    try:
        time.sleep(0.2)
        t = time.monotonic()
        assert local.stop_pid(proc.pid, proc=proc, timeout=0.3) is True
        assert time.monotonic() - t < 3
        assert proc.returncode == -9
        assert local.stop_pid(proc.pid, proc=proc) is False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
