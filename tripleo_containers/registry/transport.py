"""HTTP transport for the Registry v2 API: scheme, auth, retries, redirects.

The client above never sees a 401 or a retry. What this owns:

* one ping of ``/v2/`` per registry decides the auth scheme; the URL scheme
  is https unless the registry was explicitly marked insecure (plain HTTP),
  and never silently downgraded; the first requests to a registry go out
  beside its ping, without credentials, so that on a long RTT a re-run's
  HEADs do not wait for the ping's round trips;
* Basic and Bearer (a token is reused for any request its scope set covers
  until shortly before it expires, re-fetched once on a 401);
* redirects followed here, so an Authorization header never reaches
  another host (distribution may redirect blob GETs to storage);
* retries of what ``errors`` calls temporary (408/429/5xx, connection
  errors) on one ``Backoff`` schedule shared with the client's and the copy
  engine's loops; streamed uploads are not retried here (their body is
  gone) but as a whole by the caller;
* the stall rule (``Pace``) on every body read, and one cancel event that
  ends backoff waits and streamed reads (Ctrl-C, SIGTERM);
* TLS verified unless a registry is marked insecure, with a CA bundle per
  registry; connections, proxies and TLS settings live in ``connections``.
"""
import base64
import json
import logging
import random
import re
import threading
import time
from urllib.parse import urlencode, urlsplit

from tripleo_containers.registry import connections
from tripleo_containers.registry import credentials
from tripleo_containers.registry import errors

LOG = logging.getLogger(__name__)


class _RedactQueryFilter(logging.Filter):
    """urllib3 logs every request line at DEBUG, query included: a blob
    redirect to object storage carries a signed URL whose signature is a
    credential. Blank secret-looking query values before --debug shows them."""

    _PAIR = re.compile(r'([?&])([^=&\s"]+)=([^&\s"]*)')

    def filter(self, record):
        # openstackclient sets the root logger to DEBUG, so this runs for
        # every request even when nothing is shown: skip the formatting when
        # no argument can hold a query.
        args = record.args
        if (isinstance(args, tuple) and isinstance(record.msg, str)
                and "=" not in record.msg
                and all(a is None or isinstance(a, int)
                        or (isinstance(a, str) and "=" not in a) for a in args)):
            return True
        try:
            text = record.getMessage()
        except Exception:  # a broken record is logging's problem, not ours
            return True
        if "=" in text:
            record.msg = errors.redact_text(self._PAIR.sub(self._blank, text))
            record.args = ()
        return True

    @staticmethod
    def _blank(match):
        if errors.secret_query_key(match.group(2)):
            return "%s%s=***" % (match.group(1), match.group(2))
        return match.group(0)


_REDACT_QUERY = _RedactQueryFilter()

MAX_SMALL_BODY = 4 * 1024 * 1024
# Retries and redirects are this module's business; a Retry object (not
# False) also spares urllib3 a DEBUG record per request converting it.
_NO_RETRY = connections.urllib3.Retry(total=False, redirect=False)
_TRANSIENT = (408, 429, 500, 502, 503, 504)
_WRITES = ("PUT", "POST", "PATCH")
# After this many 5xx answers in a row to writes, a registry is taken to be
# failing for good (e.g. a full disk answering 500 UNKNOWN without detail):
# writes to it are no longer retried. Far above what a transient fault rate
# makes likely (0.3 ** 8 at a 30 % fault rate).
WRITE_CIRCUIT = 8
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5
_MAX_RETRY_AFTER = 60.0
_TOKEN_MARGIN = 10.0
# The stall rule: a body read that gets less than this many bytes per
# second, averaged over a window of the read timeout, is abandoned.
MIN_RATE = 1024


class Backoff(object):
    """The one retry schedule (transport, client and copy engine loops).

    Retry only what ``errors`` says is temporary, at most ``retries`` times,
    waiting a jittered exponential delay (capped at ``cap``) or the
    registry's Retry-After (capped at 60 s). Waits end early, raising
    Cancelled, when ``cancel`` is set.
    """

    def __init__(self, retries=4, base=0.5, cap=8.0, sleep=None, cancel=None):
        self.retries = retries
        self.base = base
        self.cap = cap
        self.sleep = sleep
        self.cancel = cancel if cancel is not None else threading.Event()

    def should_retry(self, attempt, exc, attempts=None):
        """True if ``exc`` (from 0-based try ``attempt``) is worth another
        try; ``attempts`` overrides the total number of tries."""
        limit = self.retries + 1 if attempts is None else attempts
        return (getattr(exc, "temporary", False) and attempt + 1 < limit
                and not self.cancel.is_set())

    def delay(self, attempt, exc=None):
        after = getattr(exc, "retry_after", None)
        if after is not None:
            return min(after, _MAX_RETRY_AFTER)
        return min(self.base * (2 ** attempt), self.cap) * (0.5 + random.random() / 2)

    def wait(self, attempt, exc=None):
        delay = self.delay(attempt, exc)
        if self.sleep is not None:
            self.sleep(delay)
        elif self.cancel.wait(delay):
            raise errors.Cancelled("cancelled")


class Pace(object):
    """The stall rule for body reads, and the per-chunk cancel check.

    A read fails with Stalled when no byte arrives for ``window`` seconds
    (the socket read timeout) or when fewer than ``min_rate`` * ``window``
    bytes arrive within ``window`` seconds; so a stalled transfer ends
    within two windows. Pieces are read as they arrive (urllib3 2's
    ``read1``; 1.26 blocks until a whole chunk or the timeout) and handed
    on in chunks of ``size``.
    """

    def __init__(self, window=60.0, min_rate=MIN_RATE, cancel=None):
        self.window = float(window)
        self.min_bytes = int(min_rate * self.window)
        self.cancel = cancel if cancel is not None else threading.Event()

    def chunks(self, resp, size, what="body", done=0):
        """Body chunks of ``resp``; ``done`` bytes of it were already
        received (for the message)."""
        cancel, window, min_bytes = self.cancel, self.window, self.min_bytes
        clock = time.monotonic
        window_end = clock() + window
        got = 0
        buf, have = [], 0
        pieces = resp.iter_content(size, partial=True)
        while True:
            try:
                piece = next(pieces)
            except StopIteration:
                break
            except connections.urllib3.exceptions.ReadTimeoutError:
                resp.close()
                raise errors.Stalled(
                    "%s stalled: no byte for %.0f s after %d bytes" % (
                        what, window, done + have), method=resp.method, url=resp.url)
            except connections.NETWORK_ERRORS:
                if buf:  # so that the caller can say how far it got
                    yield b"".join(buf)
                    buf = []
                raise
            if cancel.is_set():
                resp.close()
                raise errors.Cancelled("cancelled", method=resp.method, url=resp.url)
            got += len(piece)
            now = clock()
            if now >= window_end:
                if got < min_bytes:
                    resp.close()
                    raise errors.Stalled(
                        "%s stalled: %d bytes in %.0f s after %d bytes (the "
                        "limit is %d bytes/s averaged over --timeout seconds)" % (
                            what, got, now - window_end + window, done + have,
                            min_bytes // max(1, int(window))),
                        method=resp.method, url=resp.url)
                window_end = now + window
                got = 0
            if not buf and len(piece) >= size:
                done += len(piece)
                yield piece
                continue
            buf.append(piece)
            have += len(piece)
            if have >= size:
                done += have
                yield b"".join(buf)
                buf, have = [], 0
        if buf:
            yield b"".join(buf)


def parse_challenge(header):
    """('bearer'|'basic', {param: value}) from a WWW-Authenticate header."""
    if not header:
        return None, {}
    scheme, _, rest = header.strip().partition(" ")
    params = dict((k.lower(), v) for k, v in
                  re.findall(r'([A-Za-z_]+)="?((?<=")[^"]*|[^",]*)"?', rest))
    return scheme.lower(), params


def read_bounded(resp, limit=MAX_SMALL_BODY, what="response", pace=None):
    """The body of a streamed response, refusing more than ``limit`` bytes,
    read under ``pace`` (the stall rule) if given."""
    length = resp.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > limit:
        resp.close()
        raise errors.TooLarge("%s of %s bytes exceeds the %d byte limit" % (
            what, length, limit), method=resp.method, url=resp.url)
    chunks, total = [], 0
    try:
        pieces = (pace.chunks(resp, 65536, what) if pace is not None
                  else resp.iter_content(65536))
        for chunk in pieces:
            total += len(chunk)
            if total > limit:
                resp.close()
                raise errors.TooLarge("%s exceeds the %d byte limit" % (what, limit),
                                      method=resp.method, url=resp.url)
            chunks.append(chunk)
    except connections.NETWORK_ERRORS as exc:
        # A body cut short is a network fault like a reset: typed, so the
        # caller can retry the whole request, and without urllib3's repr.
        resp.close()
        raise errors.Interrupted(
            "connection broke after %d bytes of the %s (%s)" % (
                total, what, _short(exc)), method=resp.method, url=resp.url)
    return b"".join(chunks)


class _RegistryState(object):
    def __init__(self):
        self.lock = threading.Lock()
        self.pinged = False
        self.pinging = False  # a background ping was started
        self.error = None
        self.scheme = None
        self.challenge = (None, {})
        self.tokens = {}
        self.failed_writes = 0  # 5xx answers to writes in a row (the circuit)


class Transport(object):
    """Thread-safe; share one per run."""

    def __init__(self, keychain=None, insecure=(), ca_bundles=None,
                 default_verify=True, retries=4, backoff_base=0.5, max_backoff=8.0,
                 timeout=(15, 60), pool_size=64, sleep=None,
                 user_agent="tripleo-containers", cancel=None,
                 min_rate=MIN_RATE):
        if isinstance(timeout, (int, float)):
            timeout = (timeout, timeout)  # (connect, read)
        self.keychain = keychain or credentials.ANONYMOUS
        self.insecure = set(insecure or ())
        self.ca_bundles = dict(ca_bundles or {})
        self.default_verify = default_verify
        # Set it to abandon every request of this transport: backoff waits
        # and streamed reads end with Cancelled.
        self.cancel = cancel if cancel is not None else threading.Event()
        self.backoff = Backoff(retries, backoff_base, max_backoff, sleep, self.cancel)
        self.pace = Pace(timeout[1], min_rate, self.cancel)
        self.timeout = timeout
        self._states = {}
        self._states_lock = threading.Lock()
        self._secret_tokens = set()
        self.user_agent = user_agent
        # Installed here, not at import, so importing the module changes no
        # logger; addFilter skips a filter already present.
        logging.getLogger("urllib3.connectionpool").addFilter(_REDACT_QUERY)
        self.pools = connections.Pools(maxsize=pool_size)
        self._early_socks = set()  # sockets of warm() no request has taken yet
        self._timeout = connections.urllib3.Timeout(connect=timeout[0], read=timeout[1])

    # -- helpers -----------------------------------------------------------

    def close(self):
        self.pools.close()
        for sock in list(self._early_socks):  # opened early, taken by no request
            self._early_socks.discard(sock)
            sock.close()

    def _state(self, registry):
        with self._states_lock:
            return self._states.setdefault(registry, _RegistryState())

    def verify_for(self, url):
        host = urlsplit(url).netloc
        return self.ca_bundles.get(host, self.default_verify)

    def scheme_for(self, registry):
        return "http" if registry in self.insecure else "https"

    def base_url(self, registry):
        return "%s://%s" % (self.scheme_for(registry), registry)

    def secrets(self):
        return list(self._secret_tokens) + self.keychain.secrets()

    def _credential(self, registry):
        return self.keychain.resolve(registry)

    def _source_name(self, registry):
        return self.keychain.describe(registry)

    # -- the raw send with retries and redirects ----------------------------

    def _pool_for(self, url):
        """(urllib3 pool, split URL) of ``url``."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return self.pools.pool(parts.scheme, parts.hostname, port,
                               self.verify_for(url)), parts

    def _open(self, method, url, headers, data, stream):
        """One HTTP exchange; a non-streamed body is read (bounded) here so
        that its connection goes back to the pool at once."""
        pool, parts = self._pool_for(url)
        scheme = parts.scheme
        hdrs = {"User-Agent": self.user_agent}
        hdrs.update(headers)
        if pool.proxy is not None and scheme == "http":
            target = url  # a forward proxy takes the absolute URL
            hdrs.update(pool.proxy_headers or {})
        else:
            target = parts.path + ("?" + parts.query if parts.query else "")
        raw = pool.urlopen(method, target or "/", body=data, headers=hdrs,
                           retries=_NO_RETRY, redirect=False, assert_same_host=False,
                           timeout=self._timeout, preload_content=False,
                           decode_content=False, release_conn=False,
                           # a body cut short raises (urllib3 1.26 would
                           # return it short by default)
                           enforce_content_length=True)
        resp = connections.Response(raw, method, url)
        if not stream:  # HEAD too: its (empty) read frees the connection
            resp.preload(MAX_SMALL_BODY)
        return resp

    def _send(self, method, url, headers, data, stream, retry, registry, attempt=0):
        """One logical request: retries, TLS/connection errors typed;
        ``attempt`` counts the tries already made (the one beside the ping)."""
        backoff = self.backoff
        while True:
            # DELETE is how a cancelled run cleans up its upload sessions
            if backoff.cancel.is_set() and method != "DELETE":
                raise errors.Cancelled("cancelled", method=method, url=url)
            try:
                resp = self._open(method, url, headers, data, stream)
            except connections.SSL_ERRORS as exc:
                raise errors.TLSFailure(
                    "TLS verification failed for %s (%s); give its CA with "
                    "--ca-bundle %s=FILE, or if it serves plain HTTP mark it "
                    "with --insecure-registry %s" % (
                        urlsplit(url).netloc, _short(exc), registry, registry),
                    method=method, url=url)
            except connections.ProxyUnsupported as exc:
                raise errors.Unreachable("cannot reach %s: %s" % (registry, exc),
                                         method=method, url=url, temporary=False)
            except connections.NETWORK_ERRORS as exc:
                hint = ""
                if registry in self.insecure and "RemoteDisconnected" in repr(exc):
                    hint = " (marked insecure: is it serving HTTPS instead?)"
                err = errors.Unreachable(
                    "cannot reach %s: %s%s" % (registry, _short(exc), hint),
                    method=method, url=url)
                if retry and backoff.should_retry(attempt, err):
                    LOG.debug("%s %s: %s, retrying", method,
                              errors.redact_url(url), _short(exc))
                    backoff.wait(attempt, err)
                    attempt += 1
                    continue
                raise err
            LOG.debug("%s %s -> %d", method, errors.redact_url(url), resp.status_code)
            if method in _WRITES:
                state = self._state(registry)
                state.failed_writes = (state.failed_writes + 1
                                       if resp.status_code >= 500 else 0)
            if retry and resp.status_code in _TRANSIENT:
                if method in _WRITES:
                    err, _ = self._transient(resp, method, url, registry)
                else:  # no need to read the body
                    err = errors.Transient("HTTP %d" % resp.status_code,
                                           retry_after=errors.retry_after(resp))
                if backoff.should_retry(attempt, err):
                    resp.close()
                    backoff.wait(attempt, err)
                    attempt += 1
                    continue
            return resp

    def _transient(self, resp, method, url, registry):
        """(error, note) of a 408/429/5xx answer, its body read: for a write,
        the body says whether a retry can help (a full disk cannot), and
        after WRITE_CIRCUIT failed writes in a row to a registry nothing
        written to it is retried any more."""
        resp.read_quiet(65536)
        err = errors.error_for(resp, method=method, url=url, secrets=self.secrets())
        if method in _WRITES and err.temporary and (
                self._state(registry).failed_writes >= WRITE_CIRCUIT):
            err.temporary = False
            return err, (" (%d writes in a row to %s failed: not retrying writes "
                         "to it any more)" % (WRITE_CIRCUIT, registry))
        return err, ""

    def warm(self, registry, count):
        """Start ``count`` TCP connects to ``registry`` now, for requests
        about to be sent, and leave them in its pool: their handshakes then
        overlap with the work done before those requests (on a re-run, every
        destination check) instead of each request paying its own after it.
        A few milliseconds (connections.open_early); TLS, where there is
        any, stays with the request, verified as always.  Best effort: a
        connect that fails is left to urllib3, whose own error the request
        reports.  Not through a proxy."""
        if count <= 0 or self.cancel.is_set():
            return
        try:
            pool, parts = self._pool_for(self.base_url(registry))
        except ValueError:  # a proxy it cannot use: the request will say so
            return
        if pool.proxy is not None:
            return
        connections.open_early(pool, parts.hostname, pool.port, count, self.timeout[0],
                               self._early_socks)

    # -- ping and auth ------------------------------------------------------

    def ping(self, registry):
        state = self._state(registry)
        with state.lock:
            if state.pinged:
                return state
            if state.error is not None:
                # Its retries are spent: the other images of a registry that
                # is down fail at once instead of each waiting them out again.
                raise state.error
            url = self.base_url(registry) + "/v2/"
            try:
                resp = self._send("GET", url, {}, None, False, True, registry)
            except errors.RegistryError as exc:
                state.error = exc
                raise
            resp.close()
            if resp.status_code == 401:
                state.challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
            elif resp.status_code != 200:
                state.error = errors.error_for(
                    resp, method="GET", url=url, registry=registry,
                    credential_source=self._source_name(registry))
                raise state.error
            state.scheme = self.scheme_for(registry)
            state.pinged = True
            return state

    def _ping_beside(self, registry, state):
        """Start the ping of ``registry`` in the background, once."""
        with self._states_lock:
            if state.pinging:
                return
            state.pinging = True

        def run():
            try:
                self.ping(registry)
            except Exception as exc:  # kept in state.error; the caller re-raises
                LOG.debug("ping of %s: %s", registry, _short(exc))
        threading.Thread(target=run, name="ping " + registry, daemon=True).start()

    def _early(self, method, registry, url, headers, stream):
        """Send a bodiless request before ``registry`` is pinged, beside the
        ping, without credentials and without retries; then wait for the
        ping.  Returns (state, response or None): None when the answer is no
        use (no answer, a 401, or a refusal from a registry that asked for
        credentials) and the request must be sent again the ordinary way; a
        temporary error is kept as the first try.  A failed ping raises its error, as it would have
        before the request: one error per registry, not one per image."""
        state = self._state(registry)
        self._ping_beside(registry, state)
        resp = None
        try:
            resp = self._open(method, url, headers, None, stream)
        except (connections.SSL_ERRORS + connections.NETWORK_ERRORS
                + (connections.ProxyUnsupported,)) as exc:
            LOG.debug("%s %s before the ping: %s", method,
                      errors.redact_url(url), _short(exc))
        try:
            state = self.ping(registry)
        except BaseException:
            if resp is not None:
                resp.close()
            raise
        if resp is not None:
            LOG.debug("%s %s -> %d (beside the ping)", method,
                      errors.redact_url(url), resp.status_code)
            # A registry that wants credentials may answer 404 for a
            # repository it hides from anonymous clients: with a challenge,
            # only a success without credentials is taken as it is.
            refused = resp.status_code >= 400 and state.challenge[0] is not None
            if resp.status_code in _TRANSIENT and not refused:
                return state, resp  # the first of its retries
            if refused or resp.status_code == 401:
                resp.close()
                resp = None
        return state, resp

    def _token(self, registry, state, scopes, force=False):
        key = tuple(sorted(set(scopes)))
        now = time.monotonic()
        with state.lock:
            if force:
                # The registry refused what we would reuse (expired, registry
                # restarted, fewer scopes granted): ask for the exact set.
                state.tokens = dict((k, v) for k, v in state.tokens.items()
                                    if not scopes_cover(k, key))
            else:
                # A token asked for more (a batch's prefetch, pull,push for
                # pull) serves this request too.
                for granted, (token, expiry) in state.tokens.items():
                    if expiry > now and scopes_cover(granted, key):
                        return token
            _, params = state.challenge
            realm = params.get("realm")
            if not realm:
                raise errors.Unauthorized(
                    "bearer challenge without a realm", registry=registry)
            query = []
            if params.get("service"):
                query.append(("service", params["service"]))
            query.extend(("scope", s) for s in key)
            url = realm + ("&" if "?" in realm else "?") + urlencode(query)
            headers = {}
            cred = self._credential(registry)
            if cred:
                headers["Authorization"] = _basic(cred)
            resp = self._send("GET", url, headers, None, True, True, registry)
            if resp.status_code != 200:
                raise errors.error_for(
                    resp, method="GET", url=url, registry=registry,
                    credential_source=self._source_name(registry),
                    secrets=self.secrets())
            body = read_bounded(resp, 1024 * 1024, "token response", self.pace)
            try:
                doc = json.loads(body.decode("utf-8"))
                token = doc.get("token") or doc.get("access_token")
                expires_in = float(doc.get("expires_in") or 60)
            except (ValueError, AttributeError):
                token = None
            if not token:
                raise errors.Unauthorized(
                    "token endpoint returned no token", registry=registry,
                    credential_source=self._source_name(registry),
                    method="GET", url=url)
            self._secret_tokens.add(token)
            state.tokens = dict((k, v) for k, v in state.tokens.items() if v[1] > now)
            state.tokens[key] = (token, now + max(expires_in, 30.0) - _TOKEN_MARGIN)
            return token

    def prefetch_token(self, registry, scopes):
        """Fetch (or reuse) one token for all ``scopes`` so that the requests
        of a batch each needing some of them reuse it; a no-op unless the
        registry uses Bearer auth."""
        state = self.ping(registry)
        if state.challenge[0] == "bearer" and scopes:
            self._token(registry, state, scopes)

    def _auth_header(self, registry, state, scopes, force=False):
        scheme, _ = state.challenge
        if scheme == "bearer":
            return "Bearer " + self._token(registry, state, scopes, force)
        if scheme == "basic":
            cred = self._credential(registry)
            return _basic(cred) if cred else None
        return None

    # -- the public entry point ---------------------------------------------

    def request(self, method, registry, path, scopes=(), headers=None, data=None,
                stream=False, expected=(200,), retry=True, follow_redirects=False,
                what=None):
        """Send an authenticated request to ``registry``.

        ``path`` is '/v2/...' or an absolute URL on that registry (upload
        Location). ``scopes`` are token scope strings such as
        ``repository:ns/x:pull,push``. Returns the response if its status is
        in ``expected``; otherwise raises the typed error.
        """
        url = path if "://" in path else self.base_url(registry) + path
        host = urlsplit(url).netloc
        hdrs = dict(headers or {})
        early = None
        state = self._state(registry)
        if (not state.pinged and state.error is None and method in ("GET", "HEAD")
                and data is None and not self.backoff.cancel.is_set()):
            state, early = self._early(method, registry, url, hdrs, stream)
        else:
            state = self.ping(registry)
        auth = self._auth_header(registry, state, scopes)
        reauthed = False
        hops = 0
        while True:
            send_headers = dict(hdrs)
            if auth and urlsplit(url).netloc == host:
                send_headers["Authorization"] = auth
            attempt = 0
            if early is not None and early.status_code in _TRANSIENT and retry:
                # the try beside the ping was the first: its Retry-After
                # counts and it uses one of the retries
                err = errors.Transient("HTTP %d" % early.status_code,
                                       retry_after=errors.retry_after(early))
                if self.backoff.should_retry(0, err):
                    early.close()
                    early = None
                    self.backoff.wait(0, err)
                    attempt = 1
            if early is not None:
                # answered without credentials: the registry did not ask
                # for any here (a 401 was dropped and is sent again below)
                resp, early = early, None
            else:
                resp = self._send(method, url, send_headers, data, stream, retry,
                                  registry, attempt)
            if resp.status_code == 401 and not reauthed and urlsplit(url).netloc == host:
                # The token expired or the registry wants auth only for this
                # repository (ping said 200): take the new challenge, try once.
                challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
                if challenge[0]:
                    state.challenge = challenge
                reauthed = True
                new_auth = self._auth_header(registry, state, scopes, force=True)
                if new_auth and (retry or data is None):
                    resp.close()
                    auth = new_auth
                    continue
            if follow_redirects and resp.status_code in _REDIRECTS and "Location" in resp.headers:
                hops += 1
                if hops > _MAX_REDIRECTS:
                    raise errors.RegistryError("too many redirects", method=method, url=url)
                resp.close()
                try:
                    url = connections.redirect_target(url, resp.headers["Location"],
                                                      self.insecure)
                except connections.RedirectRefused as exc:
                    raise errors.RegistryError(str(exc), method=method, url=url)
                continue
            if resp.status_code in expected:
                return resp
            if resp.status_code in _TRANSIENT:
                err, note = self._transient(resp, method, url, registry)
                if not note and retry and err.temporary:
                    note = " (gave up after retries)"
                raise errors.Transient(err.detail + note, method=method, url=url,
                                       status=err.status, code=err.code,
                                       retry_after=err.retry_after,
                                       temporary=err.temporary)
            if method != "HEAD":
                resp.read_quiet(65536)
            raise errors.error_for(
                resp, method=method, url=url, registry=registry,
                credential_source=self._source_name(registry),
                secrets=self.secrets(), what=what)


def _scope_actions(scope):
    """'repository:ns/x:pull,push' -> (('repository', 'ns/x'), {'pull', 'push'})."""
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    return (kind, name), set(actions.split(","))


def scopes_cover(granted, wanted):
    """True if the scope set ``granted`` asks for every action of ``wanted``."""
    have = {}
    for scope in granted:
        key, actions = _scope_actions(scope)
        have.setdefault(key, set()).update(actions)
    for scope in wanted:
        key, actions = _scope_actions(scope)
        got = have.get(key, set())
        if "*" not in got and not actions <= got:
            return False
    return True


def _basic(cred):
    raw = ("%s:%s" % (cred.username, cred.password)).encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _short(exc):
    text = str(exc)
    # "[SSL: X] reason (_ssl.c:NNN)": up to the reason, so the caller's
    # parentheses stay balanced
    m = re.search(r"\[SSL[^\]]*\][^()'\"]*", text) or re.search(
        r"(Connection refused|Name or service not known|timed out|"
        r"Temporary failure in name resolution|RemoteDisconnected[^)]*|"
        r"IncompleteRead\([^)]*\)|Connection reset by peer)", text)
    return errors.redact_text(m.group(0).strip() if m else exc.__class__.__name__)
