"""No secret ever leaves the process: every registry command run with --debug
and --log-file against authenticated registries (Basic: the real
docker-registry with htpasswd over TLS; Bearer: BearerGateway below, a token
service plus a Bearer-enforcing front for a real registry), and the
password, the base64 "user:pass" string and the issued token are searched
for in stdout, stderr, the log file and every file the command wrote.
"""
import base64
import http.client
import http.server
import json
import os
import threading
import urllib.parse

import pytest
import yaml

from osc_cli import openstack
from tripleo_containers.testing import images

USER = "bearer-user"
PASSWORD = "Bearer-Pa55-w0rd-9f3c"
TOKEN = "tok-5d1e0c7b9a4f42e1-SECRET"
SIGNATURE = "sig-3e8f1a2b-SECRET"
_HOP = ("connection", "keep-alive", "transfer-encoding", "host")


class BearerGateway(object):
    """``http://127.0.0.1:P``: /token issues TOKEN for Basic USER:PASSWORD;
    /v2/... needs ``Authorization: Bearer TOKEN`` and is forwarded to the
    plain registry ``upstream``. With ``redirect_blobs``, blob GETs answer
    307 to a second server (another host:port, a signed-URL query) that
    records the Authorization headers it receives.
    """

    def __init__(self, upstream, redirect_blobs=False):
        self.upstream = upstream
        self.redirect_blobs = redirect_blobs
        self.storage_auth = []   # Authorization headers seen by the storage host
        self.token_requests = 0
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, headers=(), body=b""):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _handle(self):
                if self.path.startswith("/token"):
                    gateway.token_requests += 1
                    good = "Basic " + base64.b64encode(
                        ("%s:%s" % (USER, PASSWORD)).encode()).decode()
                    if self.headers.get("Authorization") != good:
                        return self._send(401, body=b'{"details":"bad credentials"}')
                    return self._send(200, [("Content-Type", "application/json")],
                                      json.dumps({"token": TOKEN, "expires_in": 300}).encode())
                if self.headers.get("Authorization") != "Bearer " + TOKEN:
                    challenge = 'Bearer realm="http://%s/token",service="gw"' % (
                        self.headers.get("Host"))
                    body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                    return self._send(401, [("WWW-Authenticate", challenge),
                                            ("Content-Type", "application/json")], body)
                if (gateway.redirect_blobs and self.command == "GET"
                        and "/blobs/sha256:" in self.path):
                    target = "http://%s/storage%s?sig=%s" % (
                        gateway.storage_address, self.path, SIGNATURE)
                    return self._send(307, [("Location", target)])
                self._forward(self.path)

            def _forward(self, path):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(*gateway.upstream_addr, timeout=30)
                headers = dict((k, v) for k, v in self.headers.items()
                               if k.lower() not in _HOP + ("authorization",))
                headers["Host"] = self.headers.get("Host")
                conn.request(self.command, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self._send(resp.status, [(k, v) for k, v in resp.getheaders()
                                         if k.lower() not in _HOP + ("content-length",)],
                           data)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        class Storage(Handler):
            def _handle(self):
                gateway.storage_auth.append(self.headers.get("Authorization"))
                path = urllib.parse.urlsplit(self.path).path[len("/storage"):]
                self._forward(path)

            do_GET = do_HEAD = _handle

        host, _, port = upstream.rpartition(":")
        self.upstream_addr = (host, int(port))
        self.servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler),
                        http.server.ThreadingHTTPServer(("127.0.0.1", 0), Storage)]
        self.address = "127.0.0.1:%d" % self.servers[0].server_address[1]
        self.storage_address = "127.0.0.1:%d" % self.servers[1].server_address[1]
        for server in self.servers:
            server.daemon_threads = True
            server.handle_error = lambda *args: None  # clients that hang up
            threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()

    def stop(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def gateway(registry_factory):
    """(gateway, backing registry, seeded set) with tripleo/centos-binary-*:t1."""
    backing = registry_factory()
    seeded = images.seed_kolla_set(backing.url, "tripleo", "centos-binary-", "t1",
                                   images=["keystone", "nova-api"], sizes="tiny",
                                   extra_tags=["17.0.0-1"])
    gw = BearerGateway(backing.address)
    yield gw, backing, seeded
    gw.stop()


def secret_strings(*pairs):
    out = [TOKEN]
    for user, password in pairs:
        out.append(password)
        out.append(base64.b64encode(("%s:%s" % (user, password)).encode()).decode())
    return out


def assert_no_secrets(secrets, proc, *paths):
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    for path in paths:
        if os.path.isdir(path):
            for root, _, files in os.walk(path):
                for name in files:
                    with open(os.path.join(root, name), "rb") as f:
                        texts[os.path.join(root, name)] = f.read().decode("latin-1")
        elif os.path.exists(path):
            with open(path, "rb") as f:
                texts[path] = f.read().decode("latin-1")
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, "secret %r... leaked in %s" % (secret[:6], where)


def creds_file(path, mapping):
    with open(path, "w") as f:
        yaml.safe_dump(dict((reg, {u: p}) for reg, (u, p) in mapping.items()), f)
    return str(path)


def test_upload_debug_basic_and_bearer_leaks_nothing(gateway, tls_auth_registry, skopeo,
                                                     tmp_path):
    gw, backing, seeded = gateway
    dst = tls_auth_registry
    creds = creds_file(tmp_path / "creds.yaml", {gw.address: (USER, PASSWORD),
                                                 dst.address: (dst.username, dst.password)})
    images_file = tmp_path / "images.yaml"
    with open(images_file, "w") as f:
        yaml.safe_dump({"container_images": [
            {"imagename": "%s/%s:t1" % (gw.address, img.repository),
             "push_destination": dst.address} for img in seeded.images.values()],
            "insecure_registries": [gw.address]}, f)
    log = tmp_path / "out" / "upload.log"
    log.parent.mkdir()
    proc = openstack("--debug", "--log-file", log, "overcloud", "container", "image",
                     "upload", "--config-file", images_file, "--registry-credentials",
                     creds, "--ca-bundle", "%s=%s" % (dst.address, dst.ca_cert),
                     cwd=str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert gw.token_requests >= 1  # the Bearer path really ran
    for img in seeded.images.values():
        assert skopeo.inspect(dst, "%s:t1" % img.repository)["Digest"] == img.digest
    assert os.path.getsize(log) > 0
    assert_no_secrets(secret_strings((USER, PASSWORD), (dst.username, dst.password)),
                      proc, str(log), str(tmp_path / "out"))


def test_read_commands_debug_leak_nothing(gateway, tls_auth_registry, tmp_path):
    gw, backing, seeded = gateway
    dst = tls_auth_registry
    images.seed_kolla_set(dst, "tripleo", "centos-binary-", "t1", images=["keystone"],
                          sizes="tiny", extra_tags=["17.0.0"])
    creds = creds_file(tmp_path / "creds.yaml", {gw.address: (USER, PASSWORD),
                                                 dst.address: (dst.username, dst.password)})
    common = ["--registry-credentials", creds, "--insecure-registry", gw.address,
              "--ca-bundle", "%s=%s" % (dst.address, dst.ca_cert)]
    keystone = "tripleo/centos-binary-keystone:t1"
    out = tmp_path / "out"
    out.mkdir()
    commands = {
        "list-bearer": ["image", "list", "--registry", gw.address] + common,
        "list-basic": ["image", "list", "--registry", dst.address] + common,
        "show-bearer": ["image", "show", "%s/%s" % (gw.address, keystone)] + common,
        "show-basic": ["image", "show", "%s/%s" % (dst.address, keystone)] + common,
        "discover-bearer": ["image", "tag", "discover", "--image",
                            "%s/%s" % (gw.address, keystone), "--tag-from-label",
                            "{version}-{release}"] + common,
        "discover-basic": ["image", "tag", "discover", "--image",
                           "%s/%s" % (dst.address, keystone), "--tag-from-label",
                           "version"] + common,
        # delete is refused (storage.delete disabled): the error path
        "delete-basic": ["image", "delete", "--yes", "%s/%s" % (dst.address, keystone)]
        + common,
        "prepare-bearer": ["image", "prepare", "--namespace", gw.address + "/tripleo",
                           "--tag", "t1", "--include", "keystone", "--pin-digests",
                           "source", "--push-destination", dst.address,
                           "--output-env-file", out / "env.yaml",
                           "--output-images-file", out / "images.yaml"] + common,
    }
    secrets = secret_strings((USER, PASSWORD), (dst.username, dst.password))
    for name, args in commands.items():
        log = out / (name + ".log")
        proc = openstack("--debug", "--log-file", log, "overcloud", "container", *args,
                         cwd=str(out))
        if name != "delete-basic":
            assert proc.returncode == 0, "%s: %s" % (name, proc.stderr[-2000:])
        else:
            assert proc.returncode != 0
        assert_no_secrets(secrets, proc, str(log))
    assert os.path.exists(out / "env.yaml")
    assert_no_secrets(secrets, proc, str(out))


def test_wrong_credentials_from_file_never_echoed(gateway, tls_auth_registry, tmp_path):
    gw, backing, seeded = gateway
    dst = tls_auth_registry
    wrong = "Wr0ng-Pa55-from-file-77"
    creds = creds_file(tmp_path / "creds.yaml", {gw.address: (USER, wrong),
                                                 dst.address: (dst.username, wrong)})
    secrets = secret_strings((USER, wrong), (dst.username, wrong))
    for registry in (gw.address, dst.address):
        log = tmp_path / ("%s.log" % registry.replace(":", "_"))
        proc = openstack("--log-file", log, "overcloud", "container", "image", "list",
                         "--registry", registry, "--registry-credentials", creds,
                         "--insecure-registry", gw.address,
                         "--ca-bundle", "%s=%s" % (dst.address, dst.ca_cert))
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        # names where the credentials came from, not what they are
        assert str(creds) in proc.stderr, proc.stderr
        assert_no_secrets(secrets, proc, str(log))
    # a malformed credentials file: the error names the file, not its content
    bad = tmp_path / "bad.yaml"
    bad.write_text("%s:\n  %s: %s\n  second: %s\n" % (dst.address, dst.username,
                                                      wrong, wrong))
    proc = openstack("overcloud", "container", "image", "list", "--registry", dst.address,
                     "--registry-credentials", bad, "--ca-bundle", dst.ca_cert)
    assert proc.returncode != 0 and str(bad) in proc.stderr
    assert wrong not in proc.stdout + proc.stderr
