"""A private Docker daemon for tests: started on a private socket, stopped by PID.

Debian's docker.io (dockerd, with its own managed containerd and runc):
vfs storage (works on any filesystem, no overlay mounts), no bridge and no
iptables (nothing touches the host network), its socket, data root, exec
root and pid file under one private folder, and ``--insecure-registry``
for the loopback test registries, so pull/push to 127.0.0.1:<port> work
over plain HTTP.  Nothing of the system daemon (if any) is used or touched.

The folder is made under /tmp with a short name: a unix socket path must
stay under 108 bytes and containerd puts its own socket under the exec root.

    daemon = dockerd.start(insecure_registries=["127.0.0.1:5000"])
    try:
        client = docker.DockerClient(base_url=daemon.url)
        ...
    finally:
        daemon.stop()
"""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

PACKAGES = "docker.io containerd runc"
TOOLS = ("dockerd", "containerd", "runc")


class DaemonError(Exception):
    """The daemon could not start; str() says why (and the log tail)."""


def missing_tools():
    """Names of the programs dockerd needs that are not installed."""
    return [tool for tool in TOOLS
            if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def ping(socket_path, timeout=2.0):
    """True when the daemon on ``socket_path`` answers GET /_ping with OK."""
    conn = _UnixHTTPConnection(socket_path, timeout)
    try:
        conn.request("GET", "/_ping")
        resp = conn.getresponse()
        return resp.status == 200 and resp.read() == b"OK"
    except OSError:
        return False
    finally:
        conn.close()


class DockerDaemon(object):
    """A running private dockerd.

    url: ``unix:///.../docker.sock`` (DOCKER_HOST / docker.DockerClient
    base_url); socket; pid; root (everything lives under it); log (its
    stdout/stderr file); env(): os.environ with DOCKER_HOST set.
    """

    def __init__(self, root, process, insecure_registries):
        self.root = root
        self.process = process
        self.pid = process.pid
        self.socket = os.path.join(root, "docker.sock")
        self.url = "unix://" + self.socket
        self.data_root = os.path.join(root, "data")
        self.exec_root = os.path.join(root, "exec")
        self.pidfile = os.path.join(root, "dockerd.pid")
        self.log = os.path.join(root, "dockerd.log")
        self.insecure_registries = list(insecure_registries)

    def env(self):
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.url
        env.pop("DOCKER_CONTEXT", None)
        env.pop("DOCKER_TLS_VERIFY", None)
        return env

    def is_running(self):
        return self.process.poll() is None

    def log_tail(self, lines=15):
        try:
            with open(self.log, "rb") as f:
                text = f.read()[-16384:].decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _containerd_pid(self):
        for path in (os.path.join(self.exec_root, "containerd", "containerd.pid"),):
            try:
                with open(path) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                pass
        return None

    def stop(self, timeout=20.0):
        """SIGTERM by PID, bounded wait, then SIGKILL (and its containerd);
        removes the folder."""
        containerd = self._containerd_pid()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if containerd:
            _kill_pid(containerd, timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __repr__(self):
        return "<DockerDaemon pid=%s %s>" % (self.pid, self.url)


def _kill_pid(pid, timeout):
    """Stop a process that is not our child (containerd started by dockerd)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def start(insecure_registries=(), timeout=60.0, dockerd="dockerd"):
    """Start a private dockerd and wait (bounded) until it answers /_ping.

    Raises DaemonError naming the reason (missing packages, the daemon
    exited, or it did not answer in time) with the tail of its log.
    """
    missing = missing_tools()
    if missing:
        raise DaemonError("%s not installed (apt-get install %s)"
                          % (", ".join(missing), PACKAGES))
    root = tempfile.mkdtemp(prefix="tcd-", dir="/tmp")
    daemon = None
    try:
        os.makedirs(os.path.join(root, "data"))
        os.makedirs(os.path.join(root, "exec"))
        argv = [dockerd, "--storage-driver", "vfs", "--iptables=false",
                "--ip6tables=false", "--bridge=none", "--host",
                "unix://" + os.path.join(root, "docker.sock"),
                "--data-root", os.path.join(root, "data"),
                "--exec-root", os.path.join(root, "exec"),
                "--pidfile", os.path.join(root, "dockerd.pid")]
        for registry in insecure_registries:
            argv += ["--insecure-registry", registry]
        env = dict(os.environ)
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
        with open(os.path.join(root, "dockerd.log"), "wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=env,
                                       start_new_session=True)
        daemon = DockerDaemon(root, process, insecure_registries)
        deadline = time.monotonic() + timeout
        while True:
            if not daemon.is_running():
                raise DaemonError("dockerd exited with %s at start-up: %s"
                                  % (process.returncode, daemon.log_tail(5)))
            if os.path.exists(daemon.socket) and ping(daemon.socket):
                return daemon
            if time.monotonic() > deadline:
                raise DaemonError("dockerd did not answer on %s within %.0f s: %s"
                                  % (daemon.socket, timeout, daemon.log_tail(5)))
            time.sleep(0.1)
    except BaseException:
        if daemon is not None:
            daemon.stop()
        else:
            shutil.rmtree(root, ignore_errors=True)
        raise
