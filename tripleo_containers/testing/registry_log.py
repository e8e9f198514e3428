"""Counting the requests a local registry served, from its access log.

Tests and benchmarks prove what the client did by what the registry saw
(a real docker-registry started by tripleo_containers.registry.local).
What the registry prints, verified on distribution 2.8.2:

* stdout is the HTTP access log, one Apache "combined" line per request,
  written by the handler that wraps the whole application (so 401s from
  auth and 405s from a mirror are there too);
* stderr is the application log; with ``log.formatter: json`` each request
  also ends with a JSON line carrying ``http.request.method``,
  ``http.request.uri`` and ``http.response.status``.

Both lines are written before the response is flushed to the client, so a
test that counts requests right after its client returned sees them all.
:func:`parse_log` reads either format.
"""
import collections
import json
import os
import re

from tripleo_containers.registry import local

LogEntry = collections.namedtuple(
    "LogEntry", "method uri path query status size user_agent")

_COMBINED_RE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<uri>\S+) [^"]*" '
    r'(?P<status>\d{3}) (?P<size>\d+|-)(?: "[^"]*" "(?P<ua>[^"]*)")?')

# Path shapes of the v2 API; ``name`` may contain slashes.
ROUTES = collections.OrderedDict([
    ("base", re.compile(r"^/v2/?$")),
    ("catalog", re.compile(r"^/v2/_catalog$")),
    ("tags", re.compile(r"^/v2/(?P<name>.+)/tags/list$")),
    ("manifest", re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")),
    ("upload", re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<uuid>[^/]*)$")),
    ("blob", re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[a-z0-9]+:[a-f0-9]+)$")),
])


def route_of(path):
    """Which v2 endpoint a request path hit: base, catalog, tags, manifest,
    upload, blob, or None."""
    for kind, rx in ROUTES.items():
        if rx.match(path):
            return kind
    return None


def parse_log_line(line):
    """One access-log line (combined) or JSON app-log request line ->
    LogEntry, else None (startup messages, blank lines)."""
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            rec = json.loads(line)
        except ValueError:
            return None
        if "http.response.status" not in rec or "http.request.uri" not in rec:
            return None
        method, uri = rec.get("http.request.method", ""), rec["http.request.uri"]
        status, size = int(rec["http.response.status"]), rec.get("http.response.written")
        ua = rec.get("http.request.useragent")
    else:
        m = _COMBINED_RE.match(line)
        if not m:
            return None
        method, uri, status = m.group("method"), m.group("uri"), int(m.group("status"))
        size = None if m.group("size") == "-" else int(m.group("size"))
        ua = m.group("ua")
    path, _, query = uri.partition("?")
    return LogEntry(method, uri, path, query, status, size, ua)


def parse_log(path_or_lines, offset=0):
    """Parse an access log file (from byte ``offset``) or an iterable of
    lines into LogEntry tuples."""
    if isinstance(path_or_lines, str):
        with open(path_or_lines, "rb") as f:
            f.seek(offset)
            lines = f.read().decode("utf-8", "replace").splitlines()
    else:
        lines = path_or_lines
    return [e for e in map(parse_log_line, lines) if e is not None]


def _status_ok(status, want):
    if want is None:
        return True
    if isinstance(want, int):
        return status == want
    if isinstance(want, str):  # "2xx"
        return str(status)[0] == want[0]
    return status in want


def filter_entries(entries, method=None, path=None, status=None, route=None,
                   query=None):
    """Entries matching all given criteria.

    method: 'PUT' or a collection of methods; path: regex searched in the
    path (no query); status: int, collection of ints, or '2xx'/'4xx';
    route: a :data:`ROUTES` key ('upload', 'blob', 'manifest', ...);
    query: regex searched in the query string.
    """
    methods = {method} if isinstance(method, str) else method
    path_rx = re.compile(path) if isinstance(path, str) else path
    query_rx = re.compile(query) if isinstance(query, str) else query
    out = []
    for e in entries:
        if methods is not None and e.method not in methods:
            continue
        if path_rx is not None and not path_rx.search(e.path):
            continue
        if query_rx is not None and not query_rx.search(e.query):
            continue
        if route is not None and route_of(e.path) != route:
            continue
        if not _status_ok(e.status, status):
            continue
        out.append(e)
    return out


class RequestCounter(object):
    """The requests a registry (anything with ``access_log``, e.g. a
    LocalRegistry) served from the moment the counter was made, without the
    readiness probes of ``local.start``.

    ``count(method='PUT', route='upload', status=201)``; criteria as
    :func:`filter_entries`. ``entries()`` gives the LogEntry tuples;
    ``reset()`` moves the mark to now.
    """

    def __init__(self, registry):
        self.registry = registry
        self.reset()

    def reset(self):
        try:
            self.mark = os.path.getsize(self.registry.access_log)
        except FileNotFoundError:
            self.mark = 0

    def entries(self, **criteria):
        served = [e for e in parse_log(self.registry.access_log, offset=self.mark)
                  if e.user_agent != local.PROBE_AGENT]
        return filter_entries(served, **criteria)

    def count(self, **criteria):
        return len(self.entries(**criteria))
