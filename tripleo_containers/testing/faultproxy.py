"""A loopback HTTP/1.1 fault-injection proxy for registry tests.

Sits between the tool and a real registry (``FaultProxy(upstream).start()``;
give the tool ``proxy.address`` as the registry, marked insecure) and, per
request, either forwards it or injects one fault:

``reset``     close the client connection with a TCP RST before forwarding
``500`` ``502`` ``503``   answer that status without forwarding
``429``       answer 429 without Retry-After; ``429-retry-after`` with ``Retry-After: 1``
``truncate``  forward, then send the headers and only half the body, then close
``stall``     forward, but hold the response ``stall_seconds`` first (bounded)
``drop``      forward (the registry commits), read its answer, then close the
              client connection without replying: the lost-response case
``hang``      read the request and never answer (until ``hang_seconds`` or stop):
              a registry that accepts connections but never answers
``trickle``   forward, send the headers, then the body one byte per
              ``trickle_seconds`` (until ``hang_seconds`` or stop): a peer
              that is never silent for long but never gets anywhere

Decisions are deterministic for a seed and independent of thread
interleaving: whether request N of a given *key* (method, path with upload
UUIDs blanked, ``digest=`` query) gets a fault is a hash of
(seed, key, N), not a shared RNG consumed in arrival order. ``max_per_key``
bounds how often one logical request is faulted (transient faults); use
``max_per_key=None`` with ``rate=1`` for permanent faults.

Every connection carries exactly one request: the proxy forces
``Connection: close`` both ways, which keeps the HTTP parsing to request
line, headers and a Content-Length or chunked body.  Threads are bounded
(``max_connections``) and every wait has a timeout, so a test can always
``stop()`` the proxy.
"""
import collections
import hashlib
import re
import socket
import struct
import threading
import time
from urllib.parse import parse_qsl, urlsplit

FAULTS = ("reset", "500", "502", "503", "429", "429-retry-after", "truncate",
          "stall", "drop", "hang", "trickle")
_STATUS_TEXT = {"500": "Internal Server Error", "502": "Bad Gateway",
                "503": "Service Unavailable", "429": "Too Many Requests",
                "429-retry-after": "Too Many Requests"}
_HOP_HEADERS = ("connection", "keep-alive", "proxy-connection", "te",
                "trailer", "upgrade")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_HEADER = 64 * 1024
IO_TIMEOUT = 30.0


class ProxyRequest(object):
    """What the proxy saw of one request (also passed to hooks/rules)."""

    __slots__ = ("index", "method", "target", "path", "query", "key", "occurrence",
                 "fault", "status")

    def __init__(self, index, method, target):
        self.index = index
        self.method = method
        self.target = target
        parts = urlsplit(target)
        self.path = parts.path
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        key = "%s %s" % (method, _UUID.sub("*", parts.path))
        if "digest" in self.query:
            key += "?digest=" + self.query["digest"]
        if "mount" in self.query:
            key += "?mount=" + self.query["mount"]
        self.key = key
        self.occurrence = 0
        self.fault = None
        self.status = None

    @property
    def route(self):
        """base | catalog | tags | manifest | upload | blob | other."""
        p = self.path
        if p in ("/v2", "/v2/"):
            return "base"
        if p.startswith("/v2/_catalog"):
            return "catalog"
        if "/blobs/uploads" in p:
            return "upload"
        if "/manifests/" in p:
            return "manifest"
        if "/blobs/" in p:
            return "blob"
        if p.endswith("/tags/list"):
            return "tags"
        return "other"

    def __repr__(self):
        return "ProxyRequest(#%d %s %s fault=%s status=%s)" % (
            self.index, self.method, self.target, self.fault, self.status)


class Rule(object):
    """Inject ``fault`` into matching requests with probability ``rate``.

    ``methods``: iterable of methods or None for all; ``routes``: iterable of
    ProxyRequest.route values or None; ``path``: regex searched in the path.
    """

    def __init__(self, fault, rate=1.0, methods=None, routes=None, path=None):
        if fault not in FAULTS:
            raise ValueError("unknown fault %r (one of %s)" % (fault, ", ".join(FAULTS)))
        self.fault = fault
        self.rate = float(rate)
        self.methods = set(m.upper() for m in methods) if methods else None
        self.routes = set(routes) if routes else None
        self.path = re.compile(path) if path else None

    def matches(self, req):
        return ((self.methods is None or req.method in self.methods)
                and (self.routes is None or req.route in self.routes)
                and (self.path is None or self.path.search(req.path)))


class FaultProxy(object):
    """Fault-injecting proxy to ``upstream`` ("host:port", plain HTTP).

    ``rules``: list of Rule (first matching rule whose draw hits wins);
    ``schedule``: {request index (0-based, arrival order): fault} for exact
    sequences in single-threaded tests; ``decide``: callable(ProxyRequest)
    -> fault or None, overriding both; ``hook``: callable(stage, req) called
    at "request" (before forwarding) and "response" (upstream answered,
    client not yet told), e.g. to kill the client at a precise point.
    """

    def __init__(self, upstream, rules=(), schedule=None, seed=0, max_per_key=2,
                 decide=None, hook=None, stall_seconds=1.0, hang_seconds=30.0,
                 max_connections=64, max_faults=None, trickle_seconds=0.5):
        self.upstream = upstream
        host, _, port = upstream.rpartition(":")
        self.upstream_addr = (host, int(port))
        self.rules = list(rules)
        self.schedule = dict(schedule or {})
        self.seed = seed
        self.max_per_key = max_per_key
        self.decide = decide
        self.hook = hook
        self.stall_seconds = min(float(stall_seconds), 10.0)
        self.hang_seconds = min(float(hang_seconds), 120.0)
        self.trickle_seconds = max(0.01, float(trickle_seconds))
        self.max_faults = max_faults
        self.counts = collections.Counter()   # fault name -> times injected
        self.requests = []                    # every ProxyRequest, arrival order
        self._lock = threading.Lock()
        self._seen = collections.Counter()    # key -> requests so far
        self._faulted = collections.Counter()  # key -> faults so far
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stop = threading.Event()
        self._threads = set()
        self._socks = set()
        self._listener = None
        self._acceptor = None
        self.address = None

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener
        self.address = "127.0.0.1:%d" % listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop,
                                          name="faultproxy-accept", daemon=True)
        self._acceptor.start()
        return self

    def stop(self, timeout=5.0):
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            socks = list(self._socks)
            threads = list(self._threads)
        for sock in socks:
            # shutdown, unlike close, wakes a thread blocked in recv().
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def total_faults(self):
        with self._lock:
            return sum(self.counts.values())

    def faulted(self, fault=None, **criteria):
        """Requests that got ``fault`` (any fault if None) matching
        ``method=`` / ``route=``."""
        with self._lock:
            reqs = list(self.requests)
        out = []
        for req in reqs:
            if req.fault is None or (fault and req.fault != fault):
                continue
            if any(getattr(req, k) != v for k, v in criteria.items()):
                continue
            out.append(req)
        return out

    # -- decisions ----------------------------------------------------------

    def _choose(self, req):
        with self._lock:
            req.occurrence = self._seen[req.key]
            self._seen[req.key] += 1
            if self.max_faults is not None and sum(self.counts.values()) >= self.max_faults:
                return None
            capped = (self.max_per_key is not None
                      and self._faulted[req.key] >= self.max_per_key)
        # Explicit choices (decide, schedule) are not capped; random rules are.
        if self.decide is not None:
            fault = self.decide(req)
        elif req.index in self.schedule:
            fault = self.schedule[req.index]
        else:
            fault = None
            if capped:
                return None
            for number, rule in enumerate(self.rules):
                if rule.matches(req) and self._draw(req, number) < rule.rate:
                    fault = rule.fault
                    break
        if fault is not None:
            if fault not in FAULTS:
                raise ValueError("unknown fault %r" % fault)
            with self._lock:
                self._faulted[req.key] += 1
        return fault

    def _draw(self, req, salt):
        text = "%s|%s|%s|%d" % (self.seed, salt, req.key, req.occurrence)
        value = struct.unpack(">Q", hashlib.sha256(text.encode()).digest()[:8])[0]
        return value / float(2 ** 64)

    def _record(self, req, fault):
        with self._lock:
            req.fault = fault
            self.counts[fault] += 1

    # -- connections ---------------------------------------------------------

    def _accept_loop(self):
        while not self._stop.is_set():
            if not self._slots.acquire(timeout=0.2):
                continue
            try:
                conn, _ = self._listener.accept()
            except (socket.timeout, OSError):
                self._slots.release()
                continue
            conn.settimeout(IO_TIMEOUT)
            thread = threading.Thread(target=self._serve, args=(conn,),
                                      name="faultproxy-conn", daemon=True)
            with self._lock:
                self._threads.add(thread)
                self._socks.add(conn)
            thread.start()

    def _serve(self, conn):
        upstream = None
        try:
            reader = _Reader(conn)
            head = reader.read_head()
            if head is None:
                return
            request_line, headers = head
            method, target, _ = request_line.split(" ", 2)
            with self._lock:
                req = ProxyRequest(len(self.requests), method.upper(), target)
                self.requests.append(req)
            fault = self._choose(req)
            if self.hook:
                self.hook("request", req)
            if fault == "reset":
                self._record(req, fault)
                _reset(conn)
                return
            if fault in _STATUS_TEXT:
                reader.drain_body(headers, method)
                self._record(req, fault)
                req.status = int(fault[:3])
                _answer(conn, req.status, _STATUS_TEXT[fault],
                        retry_after=1 if fault == "429-retry-after" else None)
                return
            if fault == "hang":
                reader.drain_body(headers, method)
                self._record(req, fault)
                self._stop.wait(self.hang_seconds)
                return
            upstream = socket.create_connection(self.upstream_addr, timeout=IO_TIMEOUT)
            with self._lock:
                self._socks.add(upstream)
            upstream.sendall(_rewrite_head(request_line, headers))
            reader.copy_body(headers, method, upstream.sendall)
            self._respond(conn, upstream, req, fault)
        except (OSError, ValueError):
            pass  # the client or registry went away; nothing to report to
        finally:
            _close(conn)
            if upstream is not None:
                _close(upstream)
            with self._lock:
                self._socks.discard(conn)
                if upstream is not None:
                    self._socks.discard(upstream)
                self._threads.discard(threading.current_thread())
            self._slots.release()

    def _respond(self, conn, upstream, req, fault):
        up = _Reader(upstream)
        head = up.read_head()
        if head is None:
            return
        status_line, headers = head
        try:
            req.status = int(status_line.split(" ", 2)[1])
        except (IndexError, ValueError):
            req.status = None
        if self.hook:
            self.hook("response", req)
        if fault == "drop":
            # Read the whole answer so the registry has finished (committed)
            # before the client loses it.
            up.read_to_eof()
            self._record(req, fault)
            _reset(conn)
            return
        if fault == "truncate":
            body = up.read_to_eof()
            if len(body) >= 2:
                self._record(req, fault)
                conn.sendall(_rewrite_head(status_line, headers))
                conn.sendall(body[:len(body) // 2])
                conn.shutdown(socket.SHUT_WR)  # FIN: a short body, not a reset
                return
            conn.sendall(_rewrite_head(status_line, headers) + body)
            return
        if fault == "trickle":
            self._record(req, fault)
            conn.sendall(_rewrite_head(status_line, headers))
            deadline = time.monotonic() + self.hang_seconds
            for chunk in up.stream_to_eof():
                for i in range(len(chunk)):
                    if self._stop.wait(self.trickle_seconds) or time.monotonic() > deadline:
                        return
                    conn.sendall(chunk[i:i + 1])
            return
        if fault == "stall":
            self._record(req, fault)
            if self._stop.wait(self.stall_seconds):
                return
        conn.sendall(_rewrite_head(status_line, headers))
        for chunk in up.stream_to_eof():
            conn.sendall(chunk)


class _Reader(object):
    """Buffered reads of one HTTP message from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise OSError("connection closed")
        self.buf += data

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEADER:
                raise ValueError("header too large")
            try:
                self._fill()
            except OSError:
                if not self.buf:
                    return None
                raise
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return lines[0], headers

    def _take(self, count):
        while len(self.buf) < count:
            self._fill()
        data, self.buf = self.buf[:count], self.buf[count:]
        return data

    def _line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > MAX_HEADER:
                raise ValueError("chunk line too long")
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def copy_body(self, headers, method, write):
        """Pass a request body (Content-Length or chunked) to ``write``."""
        if _header(headers, "transfer-encoding").lower().endswith("chunked"):
            while True:
                line = self._line()
                write(line)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers up to the empty line
                        trailer = self._line()
                        write(trailer)
                        if trailer == b"\r\n":
                            return
                remaining = size + 2  # data + CRLF
                while remaining:
                    chunk = self._take(min(remaining, 65536))
                    remaining -= len(chunk)
                    write(chunk)
        length = _header(headers, "content-length")
        remaining = int(length) if length.isdigit() else 0
        while remaining:
            if not self.buf:
                self._fill()
            chunk, self.buf = self.buf[:remaining], self.buf[remaining:]
            remaining -= len(chunk)
            write(chunk)

    def drain_body(self, headers, method):
        self.copy_body(headers, method, lambda data: None)

    def stream_to_eof(self):
        if self.buf:
            data, self.buf = self.buf, b""
            yield data
        while True:
            data = self.sock.recv(65536)
            if not data:
                return
            yield data

    def read_to_eof(self):
        return b"".join(self.stream_to_eof())


def _header(headers, name):
    for key, value in headers:
        if key.lower() == name:
            return value
    return ""


def _rewrite_head(first_line, headers):
    lines = [first_line]
    lines.extend("%s: %s" % (k, v) for k, v in headers if k.lower() not in _HOP_HEADERS)
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answer(conn, status, reason, retry_after=None):
    body = ('{"errors":[{"code":"UNAVAILABLE","message":"injected %d"}]}'
            % status).encode()
    head = ["HTTP/1.1 %d %s" % (status, reason),
            "Content-Type: application/json",
            "Content-Length: %d" % len(body), "Connection: close"]
    if retry_after is not None:
        head.append("Retry-After: %d" % retry_after)
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)


def _reset(sock):
    """Close with RST (SO_LINGER 0) instead of an orderly FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)


def _close(sock):
    try:
        sock.close()
    except OSError:
        pass


# -- checks the fault and crash tests make on a destination registry -------

_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json"])


def incomplete_images(url, references, verify=False, auth=None):
    """Problems of the images ``references`` ("repo:tag") at registry ``url``.

    An image whose manifest is absent is fine (not copied yet); one whose
    manifest is served but names a child manifest or blob the repository
    does not serve is a problem: a deploy would pull a broken image.
    Returns a list of "repo:tag: what is missing" strings.
    """
    import json

    from tripleo_containers.testing import images
    http, auth_headers = images.http_client(auth, verify, timeout=30)
    problems = []

    def manifest(repo, ident):
        resp = http.request("GET", "%s/v2/%s/manifests/%s" % (url, repo, ident),
                            headers=dict(auth_headers, Accept=_ACCEPT))
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RuntimeError("GET %s manifest %s: %d" % (repo, ident, resp.status))
        return json.loads(resp.data.decode("utf-8"))

    try:
        for ref in references:
            repo, _, tag = ref.rpartition(":")
            top = manifest(repo, tag)
            if top is None:
                continue
            docs = [top]
            for child in top.get("manifests") or []:
                doc = manifest(repo, child["digest"])
                if doc is None:
                    problems.append("%s: child manifest %s missing" % (ref, child["digest"]))
                else:
                    docs.append(doc)
            for doc in docs:
                blobs = ([doc["config"]] if doc.get("config") else []) + list(
                    doc.get("layers") or [])
                for blob in blobs:
                    resp = http.request("HEAD", "%s/v2/%s/blobs/%s" % (url, repo, blob["digest"]),
                                        headers=auth_headers)
                    if resp.status != 200:
                        problems.append("%s: blob %s -> %d" % (ref, blob["digest"], resp.status))
    finally:
        http.clear()
    return problems


def record(kind, **figures):
    """Append one JSON line of test figures to $TRIPLEO_CONTAINERS_RELIABILITY_REPORT
    (unset: nothing); docs/reliability.md is written from these."""
    import json
    import os
    path = os.environ.get("TRIPLEO_CONTAINERS_RELIABILITY_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(dict(kind=kind, **figures), sort_keys=True) + "\n")
