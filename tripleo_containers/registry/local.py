"""A local Docker distribution registry, started and stopped by PID.

Kolla's multinode guide starts a registry next to the deployment host, and
the TripleO undercloud serves one on :8787.  This module does the same with
Debian's ``docker-registry`` (distribution 2.8): it writes *our own* config
(never the packaged one, which listens on every interface), starts
``docker-registry serve CONFIG``, waits until ``/v2/`` answers and records
the PID, config and logs in a state directory so that another process (the
``registry stop`` command) can stop it later.

stdout goes to ``access.log`` (one line per request served) and stderr to
``registry.log`` (the application log, JSON, where a failed start says why).

Secrets (``http.secret``, the mirror password) are handed to the registry
through ``REGISTRY_*`` environment variables that distribution overlays on
its config, so the config file we write contains no secret.
"""
import errno
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from tripleo_containers import exceptions

DEFAULT_ADDRESS = "127.0.0.1:8787"
DEFAULT_BINARY = "/usr/bin/docker-registry"
CONFIG_NAME = "config.json"
PID_NAME = "registry.pid"
STATE_NAME = "state.json"
ACCESS_LOG_NAME = "access.log"
LOG_NAME = "registry.log"
# Our readiness probe's User-Agent, so that whoever reads the access log
# can tell the probes from real clients.
PROBE_AGENT = "tripleo-containers-local-registry-probe"


class LocalRegistryError(exceptions.Error):
    """Base of the errors below; str() is one line saying what to do."""


class RegistryNotInstalled(LocalRegistryError):
    pass


class AddressInUse(LocalRegistryError):
    pass


class RegistryStartFailed(LocalRegistryError):
    pass


class AlreadyRunning(LocalRegistryError):
    pass


class NotRunning(LocalRegistryError):
    pass


# --------------------------------------------------------------------------
# addresses


def split_address(address):
    """``host:port`` / ``[v6]:port`` / ``:port`` -> (host, port:int).

    An empty host means 127.0.0.1: a test or demo registry should never
    listen on every interface by accident.
    """
    text = (address or "").strip()
    m = re.match(r"^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):([0-9]{1,5})$", text)
    if not m:
        raise LocalRegistryError(
            "invalid registry address %r: use HOST:PORT, e.g. %s"
            % (address, DEFAULT_ADDRESS))
    host = m.group(1) or m.group(2) or "127.0.0.1"
    port = int(m.group(3))
    if port > 65535:
        raise LocalRegistryError("invalid port in registry address %r" % address)
    return host, port


def join_address(host, port):
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (the caller retries on a race)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # Same option Go sets, so a port in TIME_WAIT is not reported busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            if exc.errno == errno.EADDRNOTAVAIL:
                raise LocalRegistryError(
                    "cannot listen on %s: no local interface has that address"
                    % join_address(host, port))
            raise
    return False


# --------------------------------------------------------------------------
# config


def build_config(address, storage_dir, tls_cert=None, tls_key=None,
                 htpasswd=None, realm="tripleo-containers", mirror_url=None,
                 mirror_username=None, delete_enabled=False,
                 log_level="info"):
    """The registry config as a dict (written as JSON, which is YAML).

    Secrets are not in it: see :func:`registry_env`.
    """
    storage = {"filesystem": {"rootdirectory": os.path.abspath(storage_dir)},
               "delete": {"enabled": bool(delete_enabled)}}
    if not delete_enabled:
        # The in-memory blob descriptor cache keeps answering 200 for a
        # deleted blob (distribution#2295): only use it when nothing is
        # ever deleted.
        storage["cache"] = {"blobdescriptor": "inmemory"}
    config = {
        "version": "0.1",
        "log": {"level": log_level, "formatter": "json",
                "accesslog": {"disabled": False}},
        "storage": storage,
        "http": {"addr": address,
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
    }
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            raise LocalRegistryError("TLS needs both a certificate and a key file")
        config["http"]["tls"] = {"certificate": os.path.abspath(tls_cert),
                                 "key": os.path.abspath(tls_key)}
    if htpasswd:
        config["auth"] = {"htpasswd": {"realm": realm,
                                       "path": os.path.abspath(htpasswd)}}
    if mirror_url:
        config["proxy"] = {"remoteurl": mirror_url}
        if mirror_username:
            config["proxy"]["username"] = mirror_username
    return config


def registry_env(http_secret, mirror_password=None, base=None):
    env = dict(os.environ if base is None else base)
    env["REGISTRY_HTTP_SECRET"] = http_secret
    if mirror_password is not None:
        env["REGISTRY_PROXY_PASSWORD"] = mirror_password
    return env


def _write_atomic(path, text, mode=0o644):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------
# processes


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _pid_runs_config(pid, config_path):
    """Guard against PID reuse: the process must be a registry serving
    our config before we signal it."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return _pid_alive(pid)
    return os.fsencode(os.path.abspath(config_path)) in argv


def _wait_gone(pid, proc, timeout):
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            if proc.poll() is not None:
                return True
        elif not _pid_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def stop_pid(pid, config_path=None, proc=None, timeout=5.0):
    """SIGTERM, wait up to ``timeout``, then SIGKILL and wait again.

    Returns False if there was nothing (of ours) to stop.
    """
    if proc is not None and proc.poll() is not None:
        return False
    if proc is None and config_path and not _pid_runs_config(pid, config_path):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            if proc is not None:
                proc.poll()
            return sig is not signal.SIGTERM
        if _wait_gone(pid, proc, wait):
            return True
    raise LocalRegistryError("registry pid %d did not exit after SIGKILL" % pid)


# --------------------------------------------------------------------------
# the registry


class LocalRegistry(object):
    """A running (or recorded) registry.

    Attributes: pid, address ('127.0.0.1:PORT'), host, port, url
    ('http(s)://127.0.0.1:PORT'), scheme, state_dir, storage_dir,
    config_path, access_log, log (application log), htpasswd, mirror_url,
    ca_cert.
    """

    def __init__(self, pid, address, state_dir, storage_dir, tls=False,
                 htpasswd=None, mirror_url=None, ca_cert=None, proc=None):
        self.pid = pid
        self.address = address
        self.host, self.port = split_address(address)
        self.scheme = "https" if tls else "http"
        self.url = "%s://%s" % (self.scheme, address)
        self.state_dir = state_dir
        self.storage_dir = storage_dir
        self.config_path = os.path.join(state_dir, CONFIG_NAME)
        self.pidfile = os.path.join(state_dir, PID_NAME)
        self.access_log = os.path.join(state_dir, ACCESS_LOG_NAME)
        self.log = os.path.join(state_dir, LOG_NAME)
        self.htpasswd = htpasswd
        self.mirror_url = mirror_url
        self.ca_cert = ca_cert
        self._proc = proc

    def __repr__(self):
        return "<LocalRegistry %s pid=%s>" % (self.url, self.pid)

    @property
    def insecure(self):
        return self.scheme == "http"

    def is_running(self):
        if self._proc is not None:
            return self._proc.poll() is None
        return _pid_alive(self.pid) and _pid_runs_config(self.pid, self.config_path)

    def stop(self, timeout=5.0):
        """Stop by PID (SIGTERM, then SIGKILL after ``timeout``); idempotent.
        Returns True if a running registry was stopped."""
        stopped = stop_pid(self.pid, self.config_path, self._proc, timeout)
        for name in (self.pidfile,):
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
        return stopped

    def to_state(self):
        return {"pid": self.pid, "address": self.address, "url": self.url,
                "state_dir": self.state_dir, "storage_dir": self.storage_dir,
                "htpasswd": self.htpasswd, "mirror_url": self.mirror_url,
                "ca_cert": self.ca_cert}

    @classmethod
    def from_state_dir(cls, state_dir):
        """The registry recorded in ``state_dir``; NotRunning if none is."""
        state_dir = os.path.abspath(state_dir)
        try:
            with open(os.path.join(state_dir, STATE_NAME)) as f:
                state = json.load(f)
            with open(os.path.join(state_dir, PID_NAME)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            raise NotRunning("no registry recorded in %s (nothing to stop)" % state_dir)
        return cls(pid, state["address"], state_dir, state["storage_dir"],
                   tls=state["url"].startswith("https:"),
                   htpasswd=state.get("htpasswd"),
                   mirror_url=state.get("mirror_url"),
                   ca_cert=state.get("ca_cert"))


def _last_error(log_path):
    """The most telling line of a failed start, from the JSON app log."""
    try:
        with open(log_path, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            rec = json.loads(line)
            if rec.get("level") in ("fatal", "panic", "error"):
                return rec.get("msg", line)
        except ValueError:
            if line.strip():
                return line.strip()
    return lines[-1].strip() if lines else ""


def _probe(url, ca_cert, timeout=1.0):
    """True once the registry answers /v2/ at all (200, or 401 with auth)."""
    ctx = None
    if url.startswith("https:"):
        if ca_cert:
            ctx = ssl.create_default_context(cafile=ca_cert)
        else:
            # Only a liveness probe of the process we just started.
            ctx = ssl._create_unverified_context()
    req = urllib.request.Request(url + "/v2/", headers={"User-Agent": PROBE_AGENT})
    try:
        urllib.request.urlopen(req, timeout=timeout, context=ctx).close()
        return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


_PEM = re.compile(r"^-----BEGIN [A-Z0-9 ]+-----$", re.M)
# distribution's htpasswd accepts bcrypt entries only
_HTPASSWD_LINE = re.compile(r"^[^:\s]+:\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$")


def check_input_file(path, what):
    """Refuse a TLS or htpasswd file the registry would choke on or, worse,
    accept and serve with (an empty htpasswd locks everybody out): one
    line naming the file, before anything starts."""
    try:
        with open(path, "rb") as f:
            raw = f.read(1 << 20)
    except OSError as e:
        raise LocalRegistryError("%s %s: cannot read it (%s)" % (what, path, e.strerror or e))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if what == "htpasswd file":
        entries = [l for l in (text or "").splitlines() if l.strip() and not l.startswith("#")]
        if text is None or not entries or not all(_HTPASSWD_LINE.match(l) for l in entries):
            raise LocalRegistryError(
                "htpasswd file %s: expected user:bcrypt-hash lines; create it with "
                "'htpasswd -cB %s USER'" % (path, path))
    elif text is None or not _PEM.search(text):
        raise LocalRegistryError("%s %s: not a PEM file (-----BEGIN ...-----)" % (what, path))


def start(address=DEFAULT_ADDRESS, storage_dir=None, state_dir=None,
          tls_cert=None, tls_key=None, ca_cert=None, htpasswd=None,
          mirror_url=None, mirror_username=None, mirror_password=None,
          delete_enabled=False, log_level="info", detach=False,
          binary=DEFAULT_BINARY, timeout=15.0, http_secret=None):
    """Start a registry and wait (up to ``timeout`` s) until /v2/ answers.

    address: 'HOST:PORT'; port 0 picks a free port (retried on a race).
    state_dir: holds config.json, registry.pid, state.json, access.log and
    registry.log; a new temp dir if None. storage_dir: the blob store,
    ``<state_dir>/storage`` if None. detach: put the registry in its own
    session so it outlives the caller (the CLI).
    http_secret: signs upload-session state; replicas that share a storage
    directory behind a load balancer need the same one (random if None).
    ca_cert: only recorded (and used to verify the readiness probe).
    mirror_url: pull-through cache of that upstream (pushes get 405
    UNSUPPORTED); the upstream must answer at start.  mirror_username and
    mirror_password reach the upstream's *token* service only (Docker Hub,
    Quay): distribution 2.8 cannot answer a basic-auth upstream.

    Raises RegistryNotInstalled, AddressInUse, AlreadyRunning,
    RegistryStartFailed (with the registry's own last error line).
    """
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        found = shutil.which("docker-registry") if binary == DEFAULT_BINARY else None
        if not found:
            raise RegistryNotInstalled(
                "%s not found: install it with 'apt-get install docker-registry'"
                % binary)
        binary = found
    host, port = split_address(address)
    if mirror_password is not None and not mirror_username:
        raise LocalRegistryError("a mirror password needs a mirror username")
    for path, what in ((tls_cert, "TLS certificate"), (tls_key, "TLS key"),
                       (htpasswd, "htpasswd file")):
        if path:
            check_input_file(path, what)

    try:
        state_dir = os.path.abspath(state_dir or tempfile.mkdtemp(prefix="registry-"))
        os.makedirs(state_dir, exist_ok=True)
    except OSError as e:
        raise LocalRegistryError("cannot create state directory %s: %s"
                                 % (state_dir, e.strerror or e))
    try:
        existing = LocalRegistry.from_state_dir(state_dir)
    except NotRunning:
        existing = None
    if existing is not None and existing.is_running():
        raise AlreadyRunning(
            "a registry is already running from %s (pid %d, %s): stop it first"
            % (state_dir, existing.pid, existing.url))
    storage_dir = os.path.abspath(storage_dir or os.path.join(state_dir, "storage"))
    try:
        os.makedirs(storage_dir, exist_ok=True)
    except OSError as e:
        raise LocalRegistryError("cannot create storage directory %s: %s"
                                 % (storage_dir, e.strerror or e))

    attempts = 5 if port == 0 else 1
    for attempt in range(attempts):
        chosen = port or free_port(host)
        if port and port_in_use(host, chosen):
            raise AddressInUse(
                "%s is already in use: stop what listens there or pick "
                "another --address" % join_address(host, chosen))
        try:
            return _spawn(binary, host, chosen, state_dir, storage_dir,
                          tls_cert, tls_key, ca_cert, htpasswd, mirror_url,
                          mirror_username, mirror_password, delete_enabled,
                          log_level, detach, timeout, http_secret)
        except AddressInUse:
            if attempt + 1 >= attempts:
                raise


def _spawn(binary, host, port, state_dir, storage_dir, tls_cert, tls_key,
           ca_cert, htpasswd, mirror_url, mirror_username, mirror_password,
           delete_enabled, log_level, detach, timeout, http_secret=None):
    address = join_address(host, port)
    config = build_config(address, storage_dir, tls_cert, tls_key, htpasswd,
                          mirror_url=mirror_url, mirror_username=mirror_username,
                          delete_enabled=delete_enabled, log_level=log_level)
    config_path = os.path.join(state_dir, CONFIG_NAME)
    _write_atomic(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n",
                  mode=0o600)
    env = registry_env(http_secret or secrets.token_hex(32), mirror_password)
    access_log = os.path.join(state_dir, ACCESS_LOG_NAME)
    app_log = os.path.join(state_dir, LOG_NAME)
    with open(access_log, "ab") as out, open(app_log, "ab") as err:
        proc = subprocess.Popen(
            [binary, "serve", config_path], stdin=subprocess.DEVNULL,
            stdout=out, stderr=err, env=env, cwd=state_dir, close_fds=True,
            start_new_session=detach)
    reg = LocalRegistry(proc.pid, address, state_dir, storage_dir,
                        tls=bool(tls_cert), htpasswd=htpasswd and os.path.abspath(htpasswd),
                        mirror_url=mirror_url, ca_cert=ca_cert and os.path.abspath(ca_cert),
                        proc=proc)
    deadline = time.monotonic() + timeout
    while not _probe(reg.url, ca_cert):
        if proc.poll() is not None:
            reason = _last_error(app_log)
            if "address already in use" in reason:
                raise AddressInUse("%s is already in use: stop what listens "
                                   "there or pick another --address" % address)
            raise RegistryStartFailed(
                "docker-registry exited with code %d at start: %s (log: %s)"
                % (proc.returncode, reason or "no message", app_log))
        if time.monotonic() >= deadline:
            reg.stop()
            raise RegistryStartFailed(
                "docker-registry did not answer %s/v2/ within %.0f s (log: %s)"
                % (reg.url, timeout, app_log))
        time.sleep(0.02)
    _write_atomic(reg.pidfile, "%d\n" % proc.pid)
    _write_atomic(os.path.join(state_dir, STATE_NAME),
                  json.dumps(reg.to_state(), indent=2, sort_keys=True) + "\n")
    if detach:
        # The CLI exits right away; the child is reparented to init, which
        # reaps it.  Forget it so Popen.__del__ does not warn.
        reg._proc = None
        proc.returncode = 0
    return reg


def stop(state_dir, timeout=5.0):
    """Stop the registry recorded in ``state_dir`` by its PID.

    Returns the LocalRegistry that was stopped; NotRunning if none was.
    """
    reg = LocalRegistry.from_state_dir(state_dir)
    if not reg.stop(timeout):
        raise NotRunning("the registry recorded in %s (pid %d) is not running"
                         % (reg.state_dir, reg.pid))
    # A detached registry is init's child, not ours: until init reaps it the
    # PID still answers (a zombie, ~2 s here). Wait, bounded, so whoever
    # checks the PID after "stopped" finds it gone.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(reg.pid, 0)
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(0.02)
    return reg
