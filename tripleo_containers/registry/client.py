"""Registry v2 operations: manifests, blobs, mounts, uploads, tags, catalog.

Repositories are ``reference.Reference`` objects (registry + repository);
the transport turns the registry into a scheme, host and credentials.
Manifests are kept as the exact bytes received, because a re-serialised
manifest has another digest.
"""
import hashlib
import json
import logging
import threading
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from tripleo_containers.registry import errors
from tripleo_containers.registry import ranged as ranged_mod
from tripleo_containers.registry import transport as transport_mod

LOG = logging.getLogger(__name__)

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")
LIST_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
# distribution 2.8 answers 400, hides OCI images as 404 or quietly picks the
# linux/amd64 child of a list unless the Accept header names them all.
# Schema1 is listed last only so that we can recognise it and say so.
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST] +
                   ["%s;q=0.1" % t for t in SCHEMA1])

MAX_MANIFEST = 4 * 1024 * 1024
MAX_CONFIG = 8 * 1024 * 1024
PAGE_SIZE = 1000
# A listing (_catalog, tags/list) stops with an error past these: an
# undercloud registry holds a few hundred repositories, and a registry
# whose paging never ends must not exhaust memory (docs/registry-ops.md).
MAX_LISTING = 100000
MAX_PAGES = 2000
CHUNK = 1024 * 1024


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hasher(digest):
    algo = digest.split(":", 1)[0]
    if algo not in ("sha256", "sha512"):
        raise errors.UnsupportedManifest("unsupported digest algorithm %r" % algo)
    return hashlib.new(algo)


class DeleteRefused(errors.RegistryError):
    """405 on a manifest DELETE: the registry does not allow deletes."""


class Descriptor(object):
    __slots__ = ("digest", "media_type", "size")

    def __init__(self, digest, media_type=None, size=None):
        self.digest = digest
        self.media_type = media_type
        self.size = size

    def __repr__(self):
        return "Descriptor(%s, %s, %s)" % (self.digest, self.media_type, self.size)


class Manifest(object):
    """Exact manifest bytes with their media type and verified digest."""

    def __init__(self, data, media_type, digest):
        self.data = data
        self.media_type = media_type
        self.digest = digest
        self.doc = json.loads(data.decode("utf-8"))

    @property
    def is_list(self):
        return self.media_type in LIST_TYPES

    @property
    def children(self):
        """Descriptors of the manifests a list points at."""
        if not self.is_list:
            return []
        return [Descriptor(m["digest"], m.get("mediaType"), m.get("size"))
                for m in self.doc.get("manifests") or []]

    @property
    def blobs(self):
        """Descriptors of config and layers (not foreign, URL-only layers)."""
        if self.is_list:
            return []
        out = []
        config = self.doc.get("config")
        if config:
            out.append(Descriptor(config["digest"], config.get("mediaType"),
                                  config.get("size")))
        for layer in self.doc.get("layers") or []:
            if layer.get("urls"):
                continue
            out.append(Descriptor(layer["digest"], layer.get("mediaType"),
                                  layer.get("size")))
        return out


def _media_type(header, data, where):
    ctype = (header or "").split(";", 1)[0].strip()
    if ctype in LIST_TYPES + IMAGE_TYPES:
        return ctype
    try:
        doc = json.loads(data.decode("utf-8"))
    except ValueError:
        raise errors.UnsupportedManifest("manifest is not JSON", **where)
    if not isinstance(doc, dict):
        raise errors.UnsupportedManifest("manifest is not a JSON object", **where)
    if ctype in SCHEMA1 or doc.get("schemaVersion") == 1:
        raise errors.UnsupportedManifest(
            "image uses Docker schema1 manifests, which cannot be copied "
            "without changing their digest; rebuild or re-push it with a "
            "current tool (schema2 or OCI)", **where)
    mtype = doc.get("mediaType")
    if mtype in LIST_TYPES + IMAGE_TYPES:
        return mtype
    if "manifests" in doc:
        return OCI_INDEX
    if "layers" in doc and "config" in doc:
        return OCI_MANIFEST
    raise errors.UnsupportedManifest(
        "unknown manifest type %r" % (ctype or mtype), **where)


def with_query(url, **params):
    """``url`` with ``params`` added to whatever query it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path,
                       urlencode(query), parts.fragment))


_FAILED = object()  # tee_blob's end-of-stream marker for a failed source read


class VerifiedStream(object):
    """Iterate a blob GET in chunks, hashing; the last chunk is held back
    until size and digest check out, so a corrupt blob never completes its
    PUT (the registry would see a short body and discard the upload)."""

    def __init__(self, resp, digest, size, on_bytes=None, chunk=CHUNK, pace=None):
        self.resp = resp
        self.digest = digest
        self.size = size
        self.on_bytes = on_bytes
        self.chunk = chunk
        self.pace = pace or transport_mod.Pace()
        self.sent = 0

    def __len__(self):
        return self.size

    def __iter__(self):
        hasher = _hasher(self.digest)
        seen = 0
        pending = None
        try:
            for chunk in self._chunks():
                seen += len(chunk)
                if seen > self.size:
                    raise errors.DigestMismatch(
                        "blob %s is larger than its %d bytes" % (self.digest, self.size),
                        method="GET", url=self.resp.url)
                hasher.update(chunk)
                if pending is not None:
                    yield self._count(pending)
                pending = chunk
            actual = "%s:%s" % (self.digest.split(":", 1)[0], hasher.hexdigest())
            if seen != self.size or actual != self.digest:
                raise errors.DigestMismatch(
                    "blob %s: got %d bytes hashing to %s, expected %d bytes"
                    % (self.digest, seen, actual, self.size),
                    method="GET", url=self.resp.url)
            if pending is not None:
                yield self._count(pending)
        finally:
            self.resp.close()

    def _chunks(self):
        # A source fault surfaces typed and naming the source, not as a
        # failure of the destination PUT this stream is the body of.
        chunks = self.pace.chunks(self.resp, self.chunk, "blob %s" % self.digest)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except transport_mod.connections.NETWORK_ERRORS as exc:
                raise errors.Interrupted(
                    "connection to the source broke after %d bytes of blob %s (%s)"
                    % (self.sent, self.digest, transport_mod._short(exc)),
                    method="GET", url=self.resp.url)
            if chunk:
                yield chunk

    def _count(self, chunk):
        self.sent += len(chunk)
        if self.on_bytes:
            self.on_bytes(len(chunk))
        return chunk


class Client(object):
    """Registry operations over one shared Transport."""

    def __init__(self, transport):
        self.transport = transport
        self._range_permits = threading.Semaphore(ranged_mod.BUDGET)

    def warm(self, registry, count):
        """See Transport.warm."""
        self.transport.warm(registry, count)

    def close(self):
        self.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- scopes --------------------------------------------------------------

    @staticmethod
    def scopes(repo, push=False, mount_from=()):
        out = ["repository:%s:%s" % (repo.repository, "pull,push" if push else "pull")]
        out.extend("repository:%s:pull" % r.repository for r in mount_from
                   if r.repository != repo.repository)
        return out

    def _req(self, method, repo, path, push=False, mount_from=(), **kw):
        return self.transport.request(
            method, repo.api_host, path, scopes=self.scopes(repo, push, mount_from), **kw)

    def _get_bounded(self, send, limit, what):
        """(response, body) of ``send()``, a streamed GET, re-sent when the
        connection breaks mid-body (the transport retries only until the
        headers arrive)."""
        backoff = self.transport.backoff
        attempt = 0
        while True:
            resp = send()
            try:
                return resp, transport_mod.read_bounded(resp, limit, what,
                                                        self.transport.pace)
            except errors.RegistryError as exc:
                if not backoff.should_retry(attempt, exc):
                    raise
                LOG.debug("%s, retrying", exc)
                backoff.wait(attempt, exc)
                attempt += 1

    # -- manifests -----------------------------------------------------------

    def head_manifest(self, ref, push=False):
        """Descriptor of ``ref``'s manifest, or None if it does not exist."""
        resp = self._req("HEAD", ref, "/v2/%s/manifests/%s" % (
            ref.repository, ref.identifier), push=push,
            headers={"Accept": ACCEPT}, expected=(200, 404))
        resp.close()
        if resp.status_code == 404:
            return None
        size = resp.headers.get("Content-Length")
        return Descriptor(resp.headers.get("Docker-Content-Digest"),
                          (resp.headers.get("Content-Type") or "").split(";")[0].strip(),
                          int(size) if size and size.isdigit() else None)

    def get_manifest(self, ref, push=False):
        path = "/v2/%s/manifests/%s" % (ref.repository, ref.identifier)
        resp, data = self._get_bounded(
            lambda: self._req("GET", ref, path, push=push, headers={"Accept": ACCEPT},
                              stream=True, what="image %s" % ref),
            MAX_MANIFEST, "manifest")
        where = dict(method="GET", url=resp.url)
        media_type = _media_type(resp.headers.get("Content-Type"), data, where)
        actual = sha256_digest(data)
        announced = resp.headers.get("Docker-Content-Digest")
        expected = ref.digest or announced
        if expected and expected.startswith("sha256:") and expected != actual:
            raise errors.DigestMismatch(
                "manifest bytes hash to %s, expected %s" % (actual, expected), **where)
        return Manifest(data, media_type, actual)

    def delete_manifest(self, ref, digest):
        """DELETE the manifest ``digest`` of ``ref``'s repository (and with it
        every tag pointing at it)."""
        path = "/v2/%s/manifests/%s" % (ref.repository, digest)
        # distribution maps DELETE to the "delete" action, not push
        resp = self.transport.request(
            "DELETE", ref.api_host, path, scopes=["repository:%s:delete" % ref.repository],
            expected=(200, 202, 405), what="image %s" % ref)
        resp.read_quiet(65536)
        if resp.status_code == 405:
            # Not the read-only mirror text of a refused push: for a DELETE
            # the usual cause is storage.delete.enabled: false.
            raise DeleteRefused(
                "registry %s does not allow deletes (405 UNSUPPORTED); on a "
                "distribution registry set storage.delete.enabled: true in its "
                "config and restart it (a pull-through mirror never deletes)"
                % ref.registry, method="DELETE", url=resp.url, status=405)
        return digest

    def put_manifest(self, ref, manifest):
        """Push exact bytes under ``ref.identifier`` (tag or digest)."""
        path = "/v2/%s/manifests/%s" % (ref.repository, ref.identifier)
        resp = self._req("PUT", ref, path, push=True, data=manifest.data,
                         headers={"Content-Type": manifest.media_type},
                         expected=(200, 201, 202))
        resp.close()
        digest = resp.headers.get("Docker-Content-Digest")
        if digest and digest != manifest.digest:
            raise errors.DigestMismatch(
                "registry stored the manifest as %s, sent %s" % (digest, manifest.digest),
                method="PUT", url=resp.url)
        return manifest.digest

    # -- blobs ---------------------------------------------------------------

    def _head_blob(self, repo, digest, push):
        resp = self._req("HEAD", repo, "/v2/%s/blobs/%s" % (repo.repository, digest),
                         push=push, expected=(200, 404), follow_redirects=True)
        resp.close()
        return resp

    def blob_exists(self, repo, digest, push=False):
        return self._head_blob(repo, digest, push).status_code == 200

    def blob_size(self, repo, digest, push=False):
        """A blob's size in ``repo`` (HEAD), None if it is not there."""
        resp = self._head_blob(repo, digest, push)
        if resp.status_code != 200:
            return None
        length = resp.headers.get("Content-Length")
        if not (length and length.isdigit()):
            raise errors.RegistryError("blob %s: HEAD without a Content-Length" % digest,
                                       method="HEAD", url=resp.url)
        return int(length)

    def mount_blob(self, repo, digest, from_repo):
        """(True, None) if mounted, else (False, upload URL) of a new session."""
        path = "/v2/%s/blobs/uploads/?%s" % (repo.repository, urlencode(
            [("mount", digest), ("from", from_repo.repository)]))
        resp = self._req("POST", repo, path, push=True, mount_from=[from_repo],
                         expected=(201, 202))
        resp.close()
        if resp.status_code == 201:
            return True, None
        return False, urljoin(resp.url, resp.headers["Location"])

    def start_upload(self, repo):
        # No body: distribution 2.8 ignores a monolithic POST body.
        resp = self._req("POST", repo, "/v2/%s/blobs/uploads/" % repo.repository,
                         push=True, expected=(202,))
        resp.close()
        if "Location" not in resp.headers:
            raise errors.RegistryError("upload session without a Location",
                                       method="POST", url=resp.url)
        return urljoin(resp.url, resp.headers["Location"])

    def open_blob(self, repo, digest):
        """Streaming GET of a blob (redirects followed without credentials)."""
        return self._req("GET", repo, "/v2/%s/blobs/%s" % (repo.repository, digest),
                         stream=True, follow_redirects=True,
                         what="blob %s in %s" % (digest, repo.name))

    def read_blob(self, repo, digest, limit=MAX_CONFIG):
        """A small blob's bytes, at most ``limit``, verified against ``digest``."""
        hasher = _hasher(digest)
        resp, data = self._get_bounded(lambda: self.open_blob(repo, digest), limit,
                                       "blob %s" % digest)
        hasher.update(data)
        if "%s:%s" % (digest.split(":", 1)[0], hasher.hexdigest()) != digest:
            raise errors.DigestMismatch(
                "blob %s in %s: its %d bytes do not hash to its digest" % (
                    digest, repo.name, len(data)), method="GET", url=resp.url)
        return data

    def get_config(self, ref, manifest, limit=MAX_CONFIG):
        """The verified config blob bytes of image manifest ``manifest``."""
        digest = (manifest.doc.get("config") or {}).get("digest")
        if not digest:
            raise errors.UnsupportedManifest("image %s has no config blob" % ref)
        return self.read_blob(ref, digest, limit)

    def push_blob(self, repo, digest, size, body, location=None):
        """One PUT of ``body`` (bytes or a sized iterable) to an upload session."""
        if location is None:
            location = self.start_upload(repo)
        url = with_query(location, digest=digest)
        resp = self._req("PUT", repo, url, push=True, data=body, retry=False,
                         headers={"Content-Type": "application/octet-stream",
                                  "Content-Length": str(size)},
                         expected=(201, 204))
        resp.close()

    def cancel_upload(self, repo, location):
        """DELETE an upload session so the registry frees what it holds;
        best effort (one try, errors only logged): it is cleanup."""
        try:
            resp = self._req("DELETE", repo, location, push=True, retry=False,
                             expected=(200, 202, 204, 404))
            resp.close()
        except errors.RegistryError as exc:
            LOG.debug("could not cancel an upload session: %s", exc)

    def copy_blob(self, src_repo, dst_repo, digest, size, location=None,
                  on_bytes=None, ranged=True):
        """Stream one blob from source to destination; returns bytes sent.
        A big blob is read as parallel ranged GETs (registry/ranged.py)
        unless ``ranged`` is False."""
        if location is None:
            location = self.start_upload(dst_repo)
        resp = self._open_blob(src_repo, digest, size, ranged)
        if size is None:  # (a ranged read needs the size: this is a sized GET)
            size = int(resp.headers["Content-Length"])
        stream = VerifiedStream(resp, digest, size, on_bytes, pace=self.transport.pace)
        try:
            self.push_blob(dst_repo, digest, size, stream, location)
        except ranged_mod.RangeRefused as exc:
            raise errors.Interrupted("blob %s: %s" % (digest, exc), method="GET",
                                     url=resp.url)
        finally:
            resp.close()
        return stream.sent

    def tee_blob(self, src_repo, targets, digest, size, on_bytes=None, depth=8):
        """One source read of a blob streamed into several uploads at once:
        ``targets`` is [(destination repo, upload location)]. Returns, per
        target, the bytes sent or the exception that stopped it. A
        destination that fails drops out; the others go on. A source fault
        or a digest mismatch stops them all, so that none completes."""
        import queue
        from concurrent import futures
        resp = self._open_blob(src_repo, digest, size)
        count = (lambda n: on_bytes(n * len(targets))) if on_bytes else None
        stream = VerifiedStream(resp, digest, size, count, pace=self.transport.pace)
        pipes = [queue.Queue(depth) for _ in targets]
        done = [threading.Event() for _ in targets]
        cancel = self.transport.cancel

        class Body(object):
            def __init__(self, pipe):
                self.pipe = pipe

            def __len__(self):
                return size

            def __iter__(self):
                while True:
                    try:
                        item = self.pipe.get(timeout=0.2)
                    except queue.Empty:
                        if cancel.is_set():
                            raise errors.Cancelled("cancelled")
                        continue
                    if item is None:
                        return
                    if item is _FAILED:
                        # the source's own error is what every target reports
                        raise errors.Interrupted("the source read of %s failed" % digest)
                    yield item

        def put(index):
            dst, location = targets[index]
            try:
                self.push_blob(dst, digest, size, Body(pipes[index]), location)
                return size
            except Exception as exc:
                return exc
            finally:
                done[index].set()

        def hand(item):
            for pipe, finished in zip(pipes, done):
                while not finished.is_set() and not cancel.is_set():
                    try:
                        pipe.put(item, timeout=0.2)
                        break
                    except queue.Full:
                        continue

        failure = None
        with futures.ThreadPoolExecutor(len(targets), "tee") as pool:
            puts = [pool.submit(put, i) for i in range(len(targets))]
            try:
                for chunk in stream:
                    hand(chunk)
                    if all(d.is_set() for d in done):
                        break
            except Exception as exc:
                failure = exc
            finally:
                resp.close()
            hand(_FAILED if failure is not None else None)
            results = [f.result() for f in puts]
        if failure is not None:
            return [failure] * len(targets)
        return results

    def _open_blob(self, src_repo, digest, size, ranged=True):
        """The source read of a blob: parallel ranged GETs for a big one
        (unless ``ranged`` is False), else one GET of its known size."""
        if ranged and ranged_mod.worth_it(size):
            return self._open_ranged(src_repo, digest, size)
        return self._open_sized(src_repo, digest, size)

    def _open_sized(self, src_repo, digest, size):
        resp = self.open_blob(src_repo, digest)
        length = resp.headers.get("Content-Length")
        if size is None and not (length and length.isdigit()):
            resp.close()
            raise errors.RegistryError("blob %s has no known size" % digest,
                                       method="GET", url=resp.url)
        if size is not None and length and length.isdigit() and int(length) != size:
            resp.close()
            raise errors.DigestMismatch(
                "blob %s is %s bytes at the source, the manifest says %d" % (
                    digest, length, size), method="GET", url=resp.url)
        return resp

    def _open_ranged(self, repo, digest, size):
        path = "/v2/%s/blobs/%s" % (repo.repository, digest)
        what = "blob %s in %s" % (digest, repo.name)
        pace = self.transport.pace

        def open_range(start, end):
            return self._req("GET", repo, path, stream=True, follow_redirects=True,
                             headers={"Range": "bytes=%d-%d" % (start, end)},
                             expected=(200, 206), what=what)

        def retryable(exc):
            return (isinstance(exc, transport_mod.connections.NETWORK_ERRORS)
                    or getattr(exc, "temporary", False))

        return ranged_mod.RangedBody(
            open_range, size, url=self.transport.base_url(repo.api_host) + path,
            read=lambda resp: pace.chunks(resp, CHUNK, what), retryable=retryable,
            permits=self._range_permits)

    # -- listings ------------------------------------------------------------

    def _paginate(self, repo_or_registry, path, key, page=PAGE_SIZE):
        """Every entry of a Link-paginated listing, read a page at a time.

        A registry whose paging never ends (a Link back to a page already
        read, or always another one) would grow the list without limit:
        past MAX_LISTING entries or MAX_PAGES pages it is an error.
        """
        from tripleo_containers.registry import reference
        if isinstance(repo_or_registry, str):
            target = reference.Reference(repo_or_registry, "")
            scopes = ["registry:catalog:*"]
        else:
            target = repo_or_registry
            scopes = self.scopes(repo_or_registry)
        url = "%s?n=%d" % (path, page)
        out, seen = [], set()
        while True:
            resp, body = self._get_bounded(
                lambda: self.transport.request(
                    "GET", target.api_host, url, scopes=scopes, stream=True,
                    what="repository %s" % target.name),
                MAX_MANIFEST, key)
            seen.add(resp.url)
            doc = json.loads(body.decode("utf-8") or "{}")
            out.extend(doc.get(key) or [])
            link = resp.headers.get("Link", "")
            if 'rel="next"' not in link:
                return out
            url = urljoin(resp.url, link.split(";", 1)[0].strip().strip("<>"))
            if url in seen or len(out) > MAX_LISTING or len(seen) >= MAX_PAGES:
                raise errors.TooLarge(
                    "the %s listing of %s does not end (%d entries in %d pages%s); "
                    "stopped at the limit of %d entries or %d pages" % (
                        key, target.api_host, len(out), len(seen),
                        ", its next page is one already read" if url in seen else "",
                        MAX_LISTING, MAX_PAGES), method="GET", url=resp.url)

    def list_tags(self, repo, page_size=PAGE_SIZE):
        """Every tag of ``repo``, asking ``page_size`` per request (n/last and
        Link followed; distribution 2.8 ignores n on tags/list)."""
        return self._paginate(repo, "/v2/%s/tags/list" % repo.repository, "tags",
                              page=page_size)

    def catalog(self, registry, page_size=PAGE_SIZE):
        """Every repository of ``registry`` (paginated like list_tags)."""
        return self._paginate(registry, "/v2/_catalog", "repositories", page=page_size)
