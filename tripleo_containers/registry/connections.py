"""Connections for the transport: urllib3 pools, proxies, TLS, responses.

The copy engine makes about a thousand requests per run; through
``requests.Session`` each cost the client ~0.9 ms of CPU (most of it
re-reading proxy settings from the environment and merging session
settings), against ~0.35 ms on a urllib3 pool (tools/bench_upload.py and
docs/upload.md). So the transport talks to urllib3 directly and resolves
once per (scheme, host) what requests resolved per request:

* proxies from ``http_proxy``/``https_proxy``/``all_proxy``/``no_proxy``
  (either case; ``no_proxy`` takes host suffixes, host:port, CIDR and ``*``),
  https tunnelled with CONNECT, proxy credentials sent only to the proxy;
* TLS: ``verify`` is True (``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` if set,
  else certifi's bundle like requests, else the system store), a CA bundle
  file or directory, or False for a registry marked insecure over https.
"""
import errno
import ipaddress
import logging
import os
import socket
import threading
import time
from urllib.parse import unquote, urljoin, urlsplit
from urllib.request import getproxies_environment

import urllib3
from urllib3 import exceptions as u3
from urllib3.util.wait import wait_for_write

LOG = logging.getLogger(__name__)

# Network faults: the request may be retried (nothing or a whole body is
# lost, never half a request the registry acted on without answering).
NETWORK_ERRORS = (u3.HTTPError, OSError)
SSL_ERRORS = (u3.SSLError,)


class ProxyUnsupported(ValueError):
    """A proxy URL this client cannot use (only http:// and https:// work)."""


class RedirectRefused(ValueError):
    """A redirect this client will not follow; str() says why, naming
    schemes and hosts only (a storage URL's query is a credential)."""


def redirect_target(url, location, insecure=()):
    """The absolute URL a redirect from ``url`` to ``location`` leads to.

    Only http(s) is followed, and https never to plain http unless the
    target host is in ``insecure``: the signed storage URL of a blob (and
    the blob) would otherwise cross the network in clear.
    """
    target = urljoin(url, location)
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https"):
        raise RedirectRefused("redirected to a %s:// URL (host %s); only http(s) "
                              "redirects are followed" % (parts.scheme, parts.netloc or "none"))
    if urlsplit(url).scheme == "https" and parts.scheme == "http" and \
            parts.netloc not in insecure:
        raise RedirectRefused(
            "redirect from https://%s to http://%s refused: it downgrades HTTPS to "
            "plain HTTP (if that is intended, mark %s with --insecure-registry)" % (
                urlsplit(url).netloc, parts.netloc, parts.netloc))
    return target


class Response(object):
    """The parts of an HTTP response the client reads: status, headers, a
    streamed body. ``close()`` returns a fully read connection to its pool
    and drops one whose body was left half read."""

    __slots__ = ("raw", "method", "url", "status_code", "reason", "headers",
                 "_content", "_consumed")

    def __init__(self, raw, method, url):
        self.raw = raw
        self.method = method
        self.url = url
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers = raw.headers
        self._content = None
        self._consumed = False

    def iter_content(self, size, partial=False):
        """Body chunks of at most ``size`` bytes (urllib3 errors propagate);
        ``partial``: each as soon as anything arrived, so that a caller can
        watch a trickle (urllib3 1.26 has no read1 and waits for ``size``)."""
        read = getattr(self.raw, "read1", None) if partial else None
        read = read or self.raw.read
        while True:
            chunk = read(size)
            if not chunk:
                self._consumed = True
                return
            yield chunk

    @property
    def content(self):
        """The body, at most 64 KiB of it (error texts); never raises."""
        if self._content is None:
            return self.read_quiet(65536)
        return self._content

    def preload(self, limit):
        """Read the body now and close (network errors propagate, with what
        was read kept); past ``limit`` bytes the rest is dropped with the
        connection."""
        chunks, total = [], 0
        try:
            for chunk in self.iter_content(65536):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    break
        finally:
            self._content = b"".join(chunks)[:limit]
            self.close()

    def read_quiet(self, limit):
        """At most ``limit`` bytes of the body, the response closed; never
        raises (an error body that breaks is not worth a traceback)."""
        if self._content is None:
            try:
                self.preload(limit)
            except Exception:
                pass
        else:
            self.close()
        return self._content[:limit]

    def close(self):
        raw = self.raw
        if not self._consumed:
            raw.close()
        raw.release_conn()


def _no_proxy_match(host, port, entries):
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    for entry in entries:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name, _, entry_port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and entry_port != str(port):
            continue
        name = name.lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def proxy_for(scheme, host, port):
    """The proxy URL for a request to ``scheme://host:port``, or None.
    urllib reads the variables (any case, lower case wins, an empty one
    unsets, no HTTP_PROXY under CGI); no_proxy is matched here because
    urllib's proxy_bypass_environment knows neither CIDR nor host:port."""
    proxies = getproxies_environment()
    no_proxy = proxies.get("no", "")
    if _no_proxy_match(host.lower(), port, no_proxy.replace(" ", ",").split(",")):
        return None
    return proxies.get(scheme) or proxies.get("all")


def _default_ca():
    for key in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if os.environ.get(key):
            return os.environ[key]
    try:
        import certifi
        return certifi.where()
    except ImportError:
        return None


def tls_kwargs(verify):
    """urllib3 pool settings for a requests-style ``verify`` value."""
    if verify is False:
        return {"cert_reqs": "CERT_NONE", "assert_hostname": False}
    if verify is True:
        verify = _default_ca()
        if verify is None:
            return {"cert_reqs": "CERT_REQUIRED"}
    if os.path.isdir(verify):
        return {"cert_reqs": "CERT_REQUIRED", "ca_cert_dir": verify}
    return {"cert_reqs": "CERT_REQUIRED", "ca_certs": verify}


class Pools(object):
    """Connection pools by (scheme, host, port, verify), through a proxy when
    the environment says so. Thread-safe."""

    def __init__(self, maxsize=64):
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._direct = urllib3.PoolManager(num_pools=1024, maxsize=maxsize)
        self._proxies = {}
        self._routes = {}

    def _manager(self, proxy):
        if proxy is None:
            return self._direct
        manager = self._proxies.get(proxy)
        if manager is None:
            parts = urlsplit(proxy if "://" in proxy else "http://" + proxy)
            if parts.scheme not in ("http", "https"):
                raise ProxyUnsupported(
                    "proxy %s://%s is not supported: use an http:// or https:// "
                    "proxy" % (parts.scheme, parts.hostname))
            headers = None
            if parts.username is not None:
                headers = urllib3.make_headers(proxy_basic_auth="%s:%s" % (
                    unquote(parts.username), unquote(parts.password or "")))
            netloc = parts.hostname if parts.port is None else "%s:%d" % (
                parts.hostname, parts.port)
            manager = urllib3.ProxyManager("%s://%s" % (parts.scheme, netloc),
                                           num_pools=1024, maxsize=self.maxsize,
                                           proxy_headers=headers)
            self._proxies[proxy] = manager
        return manager

    def pool(self, scheme, host, port, verify):
        key = (scheme, host, port, verify if scheme == "https" else None)
        pool = self._routes.get(key)
        if pool is not None:
            return pool
        with self._lock:
            proxy = proxy_for(scheme, host, port)
            manager = self._manager(proxy)
            kwargs = tls_kwargs(verify) if scheme == "https" else None
            if kwargs and kwargs["cert_reqs"] == "CERT_NONE":
                # Asked for explicitly: no warning per request.
                urllib3.disable_warnings(u3.InsecureRequestWarning)
            pool = manager.connection_from_host(host, port, scheme, pool_kwargs=kwargs)
            if len(self._routes) > 256:  # stays below num_pools: no eviction
                self._routes.clear()
            self._routes[key] = pool
            return pool

    def close(self):
        with self._lock:
            self._routes.clear()
            self._direct.clear()
            for manager in self._proxies.values():
                manager.clear()


def open_early(pool, host, port, count, timeout, opened):
    """Put ``count`` connections into urllib3 ``pool`` whose TCP connects
    are already under way (see Transport.warm): all started at once,
    non-blocking, in the caller's thread (a few milliseconds for 61).

    Each connection enters the pool unconnected, holding its socket for
    urllib3's own ``connect``: the request that takes it connects on that
    socket (adding TLS, verified as always, on https), waiting for the TCP
    connect to finish if it has not.  A connect that failed or did not
    finish in ``timeout`` seconds is dropped, and urllib3 connects afresh,
    with its own errors.  ``opened`` (a set) holds the sockets no request
    has taken yet, for the transport to close.

    Handed over from a background thread once connected, they came too late
    for some requests on a busy machine (61 to 80 source connections for 61
    requests); over https they sat idle after their TLS handshake, and the
    session ticket a TLS 1.3 server sends then made urllib3 take them for
    closed.  Never raises."""
    slots = []
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM)[0]
        # The pool's slots are taken first: handed back one by one, the
        # first connection would come out again for the second (LIFO).
        for _ in range(count):
            conn = pool._get_conn()
            if getattr(conn, "sock", None) is not None:  # idle and open already
                pool._put_conn(conn)
                break
            slots.append(conn)
        while slots:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            err = sock.connect_ex(address)
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                LOG.debug("early connection to %s:%s: %s", host, port, os.strerror(err))
                break
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = slots.pop()
            _connect_on(conn, sock, time.monotonic() + timeout, opened)
            pool._put_conn(conn)
    except Exception as exc:  # best effort: the request will say what is wrong
        LOG.debug("early connections to %s:%s: %s", host, port, exc)
    finally:
        for _ in slots:  # unused: the slots go back empty
            pool._put_conn(None)


def _connect_on(conn, sock, deadline, opened):
    """The next ``connect`` of urllib3 connection ``conn`` uses ``sock``;
    the ones after it (a reconnect) make their own."""
    opened.add(sock)

    def new_conn():
        del conn._new_conn
        opened.discard(sock)
        try:
            ready = wait_for_write(sock, max(0.0, deadline - time.monotonic()))
            failed = not ready or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except (OSError, ValueError):
            failed = True
        if failed:
            sock.close()
            return conn._new_conn()
        sock.settimeout(conn.timeout if isinstance(conn.timeout, (int, float)) else None)
        return sock
    conn._new_conn = new_conn
