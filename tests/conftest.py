"""Shared pytest fixtures: real registries on loopback, skopeo, request counts.

Every registry is Debian's ``docker-registry`` (distribution 2.8) started
with our own config on 127.0.0.1 and a free port, its storage and logs
under the test's tmp_path, and stopped by PID at teardown
(see tripleo_containers.registry.local).  Starting one takes ~50 ms.

Quick reference::

    def test_push(plain_registry, skopeo):
        from tripleo_containers.testing import images
        seeded = images.seed_kolla_set(plain_registry.url, "tripleo", "centos-binary-",
                                       "latest", images=["keystone"], sizes="tiny")
        info = skopeo.inspect(plain_registry, "tripleo/centos-binary-keystone:latest")
        assert info["Digest"] == seeded.images["keystone"].digest

    def test_auth(tls_auth_registry, request_counter):
        reg = tls_auth_registry           # reg.url is https://127.0.0.1:PORT
        counter = request_counter(reg)    # counts requests from now on
        requests.get(reg.url + "/v2/", auth=(reg.username, reg.password),
                     verify=reg.ca_cert)
        assert counter.count(route="base", status=200) == 1

Registry objects (LocalRegistry) carry: ``url``, ``address`` (host:port, what
goes into image references), ``host``, ``port``, ``insecure`` (plain HTTP),
``pid``, ``storage_dir``, ``state_dir``, ``access_log``, ``log`` (app log),
``stop()``, ``is_running()``.  Registries started by the TLS/auth fixtures
also carry ``ca_cert``, ``cert_dir`` (a directory with only ca.crt, for
skopeo --cert-dir), ``username`` and ``password`` (None when no auth).
Requests are counted from the access log by ``request_counter``
(tripleo_containers.testing.registry_log).

If docker-registry/skopeo/htpasswd/openssl is missing the tests that need it
are skipped with the apt package to install; set
TRIPLEO_CONTAINERS_REQUIRE_TOOLS=1 (CI does) to make that a failure instead.
"""
import json
import os
import shutil
import subprocess

import pytest

from tripleo_containers.registry import local
from tripleo_containers.testing import faultproxy, material, registry_log

USERNAME = "tripleo"
PASSWORD = "s3cr3t-Pa55"  # test-only credential of the tls_auth registries


def _require(tool, package):
    if shutil.which(tool) is None:
        msg = "%s not installed (apt-get install %s)" % (tool, package)
        if os.environ.get("TRIPLEO_CONTAINERS_REQUIRE_TOOLS"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory):
    """Session-wide TLSMaterial(ca_cert, ca_key, cert, key, cert_dir):
    an openssl-made CA and a server cert for 127.0.0.1 and localhost."""
    _require("openssl", "openssl")
    return material.make_tls(str(tmp_path_factory.mktemp("tls")))


@pytest.fixture(scope="session")
def htpasswd_file(tmp_path_factory):
    """Path of a bcrypt htpasswd file holding USERNAME/PASSWORD
    (bcrypt cost 4 to keep every authenticated request cheap)."""
    _require("htpasswd", "apache2-utils")
    path = str(tmp_path_factory.mktemp("auth") / "htpasswd")
    return material.write_htpasswd(path, {USERNAME: PASSWORD}, cost=4)


@pytest.fixture
def registry_factory(tmp_path, request):
    """Start any number of registries: ``registry_factory(**options)``.

    Options are those of ``local.start`` (address defaults to
    127.0.0.1:<free port>): tls_cert/tls_key/ca_cert, htpasswd,
    mirror_url/mirror_username/mirror_password, delete_enabled, log_level,
    storage_dir.  Extras: ``tls=True`` uses the session CA and server
    cert, ``auth=True`` uses the session htpasswd (USERNAME/PASSWORD);
    both set ca_cert/cert_dir/username/password on the returned registry.
    All registries are stopped by PID at teardown.
    """
    _require("docker-registry", "docker-registry")
    started = []

    def factory(tls=False, auth=False, **options):
        options.setdefault("address", "127.0.0.1:0")
        options.setdefault("state_dir", str(tmp_path / ("registry-%d" % len(started))))
        material = None
        if tls:
            material = request.getfixturevalue("tls_material")
            options.setdefault("tls_cert", material.cert)
            options.setdefault("tls_key", material.key)
            options.setdefault("ca_cert", material.ca_cert)
        if auth:
            options.setdefault("htpasswd", request.getfixturevalue("htpasswd_file"))
        reg = local.start(**options)
        started.append(reg)
        reg.cert_dir = material.cert_dir if material else None
        reg.ca_cert = reg.ca_cert or (material.ca_cert if material else None)
        reg.username = USERNAME if auth else None
        reg.password = PASSWORD if auth else None
        return reg

    yield factory
    for reg in started:
        reg.stop()


@pytest.fixture
def plain_registry(registry_factory):
    """A plain-HTTP registry without auth on 127.0.0.1:<free port>."""
    return registry_factory()


@pytest.fixture
def tls_auth_registry(registry_factory):
    """An HTTPS registry (session CA; verify with ``reg.ca_cert``) with
    htpasswd basic auth: ``reg.username`` / ``reg.password`` succeed,
    anything else gets 401."""
    return registry_factory(tls=True, auth=True)


@pytest.fixture
def request_counter():
    """``request_counter(registry)`` -> a RequestCounter marked now:
    ``count(method='PUT', route='upload', status=201)``, ``entries()``,
    ``reset()`` (see tripleo_containers.testing.registry_log)."""
    return registry_log.RequestCounter


class Skopeo(object):
    """Runs the real skopeo with the right flags for a LocalRegistry.

    ``inspect(reg, "ns/name:tag")`` -> dict (skopeo inspect JSON);
    ``inspect(reg, ref, raw=True)`` -> manifest bytes exactly as served;
    ``inspect(reg, ref, config=True)`` -> config blob dict;
    ``copy(src_reg, src_ref, dst_reg, dst_ref, all_images=True)``;
    ``run(*args)`` -> CompletedProcess (check=False) for failure cases.
    Registries may also be plain "host:port" strings (plain HTTP, no auth).
    User credential files are ignored (REGISTRY_AUTH_FILE points to an
    empty file).
    """

    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        auth = os.path.join(tmpdir, "auth.json")
        with open(auth, "w") as f:
            f.write('{"auths": {}}')
        self.env = dict(os.environ, REGISTRY_AUTH_FILE=auth)

    @staticmethod
    def flags(reg, prefix=""):
        """skopeo TLS/credential flags for reg ('' / 'src-' / 'dest-')."""
        if isinstance(reg, str) or getattr(reg, "insecure", True):
            out = ["--%stls-verify=false" % prefix]
        else:
            out = ["--%scert-dir" % prefix, reg.cert_dir]
        if getattr(reg, "username", None):
            out += ["--%screds" % prefix, "%s:%s" % (reg.username, reg.password)]
        return out

    @staticmethod
    def ref(reg, name):
        address = reg if isinstance(reg, str) else reg.address
        return "docker://%s/%s" % (address, name)

    def run(self, *args, timeout=120):
        return subprocess.run(["skopeo"] + list(args), capture_output=True,
                              env=self.env, timeout=timeout)

    def _ok(self, *args, **kw):
        proc = self.run(*args, **kw)
        if proc.returncode != 0:
            raise AssertionError("skopeo %s failed: %s"
                                 % (" ".join(args), proc.stderr.decode(errors="replace")))
        return proc.stdout

    def inspect(self, reg, name, raw=False, config=False, extra=()):
        args = ["inspect"] + self.flags(reg) + list(extra)
        if raw:
            args.append("--raw")
        if config:
            args.append("--config")
        out = self._ok(*(args + [self.ref(reg, name)]))
        return out if raw else json.loads(out)

    def copy(self, src, src_name, dst, dst_name, all_images=False, extra=()):
        args = (["copy", "--retry-times", "0"] + self.flags(src, "src-")
                + self.flags(dst, "dest-") + list(extra))
        if all_images:
            args.append("--all")
        self._ok(*(args + [self.ref(src, src_name), self.ref(dst, dst_name)]),
                 timeout=600)


@pytest.fixture
def skopeo(tmp_path):
    """A Skopeo helper (see class); skipped if skopeo is not installed."""
    _require("skopeo", "skopeo")
    d = tmp_path / "skopeo"
    d.mkdir()
    return Skopeo(str(d))


@pytest.fixture
def proxies():
    """``proxies(registry, **kw)`` starts a FaultProxy in front of a test
    registry (see tripleo_containers.testing.faultproxy); all are stopped at
    teardown."""
    started = []

    def make(reg, **kw):
        proxy = faultproxy.FaultProxy(reg.address, **kw).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()
