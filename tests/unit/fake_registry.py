"""An in-process Registry v2 fake for exact request sequences and faults.

Only for what a real registry cannot be made to do on demand (lost
responses, 5xx with Retry-After, redirects to another host, token expiry);
the functional tests use the real docker-registry.

Faults are callables ``fault(req) -> None | (status, headers, body) | "drop"``
consulted before normal handling; ``req`` has method, path, query (dict),
headers. "drop" handles the request normally but closes the connection
instead of answering (a lost response).
"""
import base64
import hashlib
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def lose_first_upload_put(dropped):
    """A fault: the first blob upload PUT is stored, its answer lost (the
    connection drops); the request is appended to ``dropped``."""
    def fault(req):
        if req.method == "PUT" and "/uploads/" in req.path and not dropped:
            dropped.append(req)
            return "drop"
    return fault


def cancel_while_held(src, dst, image, held, jobs=1, meta_jobs=2):
    """Copy ``image`` ('repo:tag') from ``src`` to ``dst`` with a real
    engine; the first source request ``held(req)`` selects is held, and
    the run is cancelled then.  Returns the run's results, after checking
    that the run ended while that request was still held (it abandoned
    the in-flight work instead of waiting for it)."""
    from tripleo_containers.copy import engine
    from tripleo_containers.registry import client, reference, transport
    entered, release = threading.Event(), threading.Event()

    def hold(req):
        if held(req):
            entered.set()
            release.wait(60)
    src.faults.append(hold)
    tr = transport.Transport(insecure=[src.address, dst.address], retries=2,
                             timeout=(5, 90))
    eng = engine.Engine(client.Client(tr), jobs=jobs, meta_jobs=meta_jobs)
    job = engine.CopyJob(reference.parse("%s/%s" % (src.address, image)),
                         reference.parse("%s/%s" % (dst.address, image)))
    out = []
    runner = threading.Thread(target=lambda: out.append(eng.run([job])))
    runner.start()
    try:
        assert entered.wait(10)
        eng.cancel()
        runner.join(30)
        assert not runner.is_alive() and not release.is_set()
    finally:
        release.set()
        tr.close()
    return out[0][0]


class Req(object):
    def __init__(self, method, path, query, headers, body=b"", query_all=None):
        self.query_all = query_all or {}
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.client_port = None  # the client's TCP port: one per connection

    def __repr__(self):
        return "%s %s" % (self.method, self.path)


def _error(code, message, status):
    return status, {"Content-Type": "application/json"}, json.dumps(
        {"errors": [{"code": code, "message": message}]}).encode()


class FakeRegistry(object):
    def __init__(self, auth=None, username="u", password="p",
                 relative_location=True, token_ttl=300, blob_redirect=None):
        self.auth = auth                      # None | "basic" | "bearer"
        self.username = username
        self.password = password
        self.relative_location = relative_location
        self.token_ttl = token_ttl
        self.blob_redirect = blob_redirect    # base URL of another server
        self.blobs = {}
        self.repo_blobs = {}
        self.manifests = {}                   # repo -> {ref: (bytes, type)}
        self.uploads = {}
        self.tokens = {}                      # token -> scopes
        self.faults = []
        self.log = []
        self.allow_mount = True
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                query_all = parse_qs(parts.query)
                query = dict((k, v[0]) for k, v in query_all.items())
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Req(self.command, parts.path, query, dict(self.headers.items()), body,
                          query_all)
                req.client_port = self.client_address[1]
                with fake.lock:
                    fake.log.append(req)
                answer = None
                for fault in list(fake.faults):
                    answer = fault(req)
                    if answer is not None:
                        break
                drop = answer == "drop"
                if answer is None or drop:
                    answer = fake.handle(req)
                if drop:
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                status, headers, data = answer
                self.send_response(status)
                headers = dict(headers)
                headers.setdefault("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.url = "http://" + self.address
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # -- seeding -------------------------------------------------------------

    def add_blob(self, repo, data):
        d = digest_of(data)
        self.blobs[d] = data
        self.repo_blobs.setdefault(repo, set()).add(d)
        return d

    def add_image(self, repo, tag, layers, media_type=DOCKER_MANIFEST):
        """Seed an image of ``layers`` (bytes); returns the manifest bytes."""
        config = json.dumps({"repo": repo, "tag": tag}).encode()
        cd = self.add_blob(repo, config)
        doc = {"schemaVersion": 2, "mediaType": media_type,
               "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                          "size": len(config), "digest": cd},
               "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                           "size": len(layer), "digest": self.add_blob(repo, layer)}
                          for layer in layers]}
        data = json.dumps(doc, indent=3).encode()  # odd spacing: bytes must be kept
        self.add_manifest(repo, tag, data, media_type)
        return data

    def add_manifest(self, repo, tag, data, media_type):
        refs = self.manifests.setdefault(repo, {})
        refs[digest_of(data)] = (data, media_type)
        if tag:
            refs[tag] = (data, media_type)

    # -- log helpers -----------------------------------------------------------

    def requests(self, method=None, contains=None):
        return [r for r in self.log if (method is None or r.method == method)
                and (contains is None or contains in r.path)]

    def sequence(self):
        return ["%s %s" % (r.method, r.path) for r in self.log]

    # -- the API -------------------------------------------------------------

    def _authorized(self, req):
        if not self.auth:
            return True
        header = req.headers.get("Authorization", "")
        if self.auth == "basic":
            want = "Basic " + base64.b64encode(
                ("%s:%s" % (self.username, self.password)).encode()).decode()
            return header == want
        return header.startswith("Bearer ") and header[7:] in self.tokens

    def _challenge(self):
        if self.auth == "basic":
            return {"WWW-Authenticate": 'Basic realm="fake"'}
        return {"WWW-Authenticate": 'Bearer realm="%s/token",service="fake"' % self.url}

    def handle(self, req):
        if req.path == "/token":
            return self._token(req)
        if not req.path.startswith("/v2/"):
            return 404, {}, b""
        if not self._authorized(req):
            status, headers, body = _error("UNAUTHORIZED", "authentication required", 401)
            headers.update(self._challenge())
            return status, headers, body
        rest = req.path[4:]
        if rest == "":
            return 200, {"Content-Type": "application/json"}, b"{}"
        if rest == "_catalog":
            return self._paged(req, sorted(self.manifests), "repositories")
        if "/manifests/" in rest:
            repo, ref = rest.split("/manifests/", 1)
            return self._manifest(req, repo, ref)
        if "/blobs/uploads/" in rest:
            repo, upload = rest.split("/blobs/uploads/", 1)
            return self._upload(req, repo, upload)
        if "/blobs/" in rest:
            repo, digest = rest.split("/blobs/", 1)
            return self._blob(req, repo, digest)
        if rest.endswith("/tags/list"):
            repo = rest[:-len("/tags/list")]
            tags = sorted(t for t in self.manifests.get(repo, {}) if ":" not in t)
            return self._paged(req, tags, "tags", extra={"name": repo})
        return 404, {}, b""

    def _token(self, req):
        header = req.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(
            ("%s:%s" % (self.username, self.password)).encode()).decode()
        if header != want:
            return _error("UNAUTHORIZED", "bad credentials", 401)
        token = uuid.uuid4().hex
        self.tokens[token] = req.query.get("scope")
        return 200, {"Content-Type": "application/json"}, json.dumps(
            {"token": token, "expires_in": self.token_ttl}).encode()

    def _paged(self, req, items, key, extra=None):
        n = int(req.query.get("n") or 1000)
        last = req.query.get("last")
        if last:
            items = [i for i in items if i > last]
        page = items[:n]
        headers = {"Content-Type": "application/json"}
        if len(items) > n:
            headers["Link"] = '<%s?n=%d&last=%s>; rel="next"' % (req.path, n, page[-1])
        doc = dict(extra or {})
        doc[key] = page
        return 200, headers, json.dumps(doc).encode()

    def _manifest(self, req, repo, ref):
        refs = self.manifests.get(repo, {})
        if req.method in ("GET", "HEAD"):
            if ref not in refs:
                return _error("MANIFEST_UNKNOWN", "manifest unknown", 404)
            data, mtype = refs[ref]
            return 200, {"Content-Type": mtype, "Docker-Content-Digest": digest_of(data)}, data
        if req.method == "PUT":
            doc = json.loads(req.body.decode())
            have = self.repo_blobs.get(repo, set())
            needed = [doc["config"]["digest"]] + [l["digest"] for l in doc.get("layers", [])] \
                if "config" in doc else []
            for d in needed:
                if d not in have:
                    return _error("MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", 400)
            for m in doc.get("manifests", []):
                if m["digest"] not in refs:
                    return _error("MANIFEST_UNKNOWN", "manifest unknown", 400)
            tag = None if ref.startswith("sha256:") else ref
            self.add_manifest(repo, tag, req.body, req.headers.get("Content-Type"))
            return 201, {"Docker-Content-Digest": digest_of(req.body),
                         "Location": "/v2/%s/manifests/%s" % (repo, digest_of(req.body))}, b""
        return 405, {}, b""

    def _blob(self, req, repo, digest):
        if digest not in self.repo_blobs.get(repo, set()):
            return _error("BLOB_UNKNOWN", "blob unknown to registry", 404)
        data = self.blobs[digest]
        if req.method == "GET" and self.blob_redirect:
            return 307, {"Location": "%s/storage/%s?X-Amz-Signature=secret" % (
                self.blob_redirect, digest)}, b""
        return 200, {"Content-Length": str(len(data)), "Docker-Content-Digest": digest,
                     "Content-Type": "application/octet-stream"}, data

    def _location(self, repo, upload_id):
        path = "/v2/%s/blobs/uploads/%s?_state=abc" % (repo, upload_id)
        return path if self.relative_location else self.url + path

    def _upload(self, req, repo, upload):
        if req.method == "POST":
            mount, frm = req.query.get("mount"), req.query.get("from")
            if mount and self.allow_mount and mount in self.repo_blobs.get(frm, set()):
                self.repo_blobs.setdefault(repo, set()).add(mount)
                return 201, {"Docker-Content-Digest": mount,
                             "Location": "/v2/%s/blobs/%s" % (repo, mount)}, b""
            upload_id = uuid.uuid4().hex
            self.uploads[upload_id] = repo
            return 202, {"Location": self._location(repo, upload_id),
                         "Docker-Upload-UUID": upload_id}, b""
        if req.method == "PUT":
            if upload not in self.uploads:
                return _error("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
            digest = req.query.get("digest")
            if digest_of(req.body) != digest:
                return _error("DIGEST_INVALID", "provided digest did not match", 400)
            del self.uploads[upload]
            self.add_blob(repo, req.body)
            return 201, {"Docker-Content-Digest": digest,
                         "Location": "/v2/%s/blobs/%s" % (repo, digest)}, b""
        return 405, {}, b""


class Storage(object):
    """A second host that serves redirected blob GETs and records headers."""

    def __init__(self, registry):
        self.seen = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                store.seen.append(dict(self.headers.items()))
                digest = urlsplit(self.path).path.rsplit("/", 1)[1]
                data = registry.blobs[digest]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("localhost", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://localhost:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
