"""Upload images from a local Docker daemon (where kolla-build puts them).

Read path: docker-py.  ``inspect`` gives the image ID (= sha256 of its
config JSON) and the layer diff_ids before any data moves; ``save`` streams
a docker-save tar (legacy ``<id>/layer.tar`` + ``<id>.json``, or the OCI
layout ``blobs/sha256/<hex>`` of Docker 25+; both hold the config bytes and
the *uncompressed* layer tars).

Write path: the copy engine (copy/engine.py) with this module's
``DaemonSource``, so a daemon upload has what a registry upload has: one
plan across all images, ``--jobs`` uploads at once, each blob once per
destination registry (present -> skipped, else uploaded once and mounted
into the other repositories), retries of temporary errors, Ctrl-C, upload
sessions cancelled, per-image results.

* Layers are pushed uncompressed, media type
  ``application/vnd.docker.image.rootfs.diff.tar``, so each layer's digest is
  its diff_id.  That makes digests deterministic and known up front (no
  gzip whose bytes depend on the zlib version and level), lets the engine
  HEAD every blob before reading anything from the daemon, and costs no
  CPU.  The price is bytes: a real layer is 2-3x its gzip size on the wire
  and in the registry.  docker, podman and containerd pull such layers.
  (kolla's own ``--push`` goes through the daemon and gzips; use it when
  size matters more than these guarantees.)
* Sizes are unknown until read: the engine learns those of blobs the
  destination has from its HEAD, the others from the save stream.  A blob
  the destination has is never read from the daemon; a re-run reads
  nothing.
* An image's save stream is opened on the first blob the engine asks for
  and read sequentially; each file in it is hashed while spooled to disk
  and kept only if the engine will ask for it (digests are checked on our
  side before the registry checks them again), then removed once sent.
  Disk peak: the spooled, not yet sent members of the images being read
  (at most their missing layers).  A retried upload reads the stream again.
* The manifest is Docker schema2, written by us once every size is known
  and pushed after its blobs; its digest is the sha256 of the exact bytes
  we PUT.  A destination that has that manifest already is not written.
"""
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import threading

from tripleo_containers import exceptions

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
CHUNK = 1024 * 1024


class DaemonError(exceptions.Error):
    """The Docker daemon cannot be reached or does not have the image."""


class DaemonUnreachable(DaemonError):
    pass


class ImageNotInDaemon(DaemonError):
    pass


def connect(url=None, timeout=120):
    """docker.DockerClient for ``url`` (else $DOCKER_HOST / the default
    socket), checked with a ping.  Raises DaemonUnreachable / DaemonError."""
    try:
        import docker
    except ImportError:
        raise DaemonError("reading images from a Docker daemon needs the 'docker' "
                          "Python package: pip install 'tripleo-containers[build]'")
    where = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = (docker.DockerClient(base_url=url, timeout=timeout) if url
                  else docker.from_env(timeout=timeout))
        client.ping()
    except Exception as e:  # docker-py wraps socket errors in several types
        raise DaemonUnreachable("Docker daemon at %s is not reachable: %s; start it or "
                                "set DOCKER_HOST" % (where, _short(e)))
    return client


def _short(exc):
    text = str(exc).strip().splitlines()
    return text[-1][:200] if text else exc.__class__.__name__


class DaemonImage(object):
    """What the daemon says about an image before any data is read."""

    def __init__(self, name, image_id, diff_ids):
        self.name = name
        self.id = image_id          # sha256 of the config JSON
        self.diff_ids = diff_ids    # layer digests, base first


def inspect(docker_client, name):
    import docker
    try:
        attrs = docker_client.images.get(name).attrs
    except docker.errors.ImageNotFound:
        raise ImageNotInDaemon("image %s is not in the Docker daemon (build or pull "
                               "it first; 'docker images' lists what is there)" % name)
    except docker.errors.APIError as e:
        raise DaemonError("Docker daemon: inspecting %s failed: %s" % (name, _short(e)))
    return DaemonImage(name, attrs["Id"], list(attrs.get("RootFS", {}).get("Layers") or []))


class _FileBody(object):
    """A sized request body reading a spooled file once, then removing it
    (a retry reads the save stream again)."""

    def __init__(self, path, size, on_bytes, cancel):
        self.path = path
        self.size = size
        self.on_bytes = on_bytes
        self.cancel = cancel

    def __len__(self):
        return self.size

    def __iter__(self):
        from tripleo_containers.registry import errors
        try:
            with open(self.path, "rb") as f:
                while True:
                    if self.cancel is not None and self.cancel.is_set():
                        raise errors.Cancelled("cancelled")
                    chunk = f.read(CHUNK)
                    if not chunk:
                        return
                    if self.on_bytes:
                        self.on_bytes(len(chunk))
                    yield chunk
        finally:
            _unlink(self.path)


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


class DaemonRef(object):
    """A copy job's source: an image in the Docker daemon."""

    def __init__(self, name):
        self.name = name

    def __str__(self):
        return self.name


class _Save(object):
    """One image's ``docker save`` stream, read sequentially once (again
    only for a blob that must be read twice, e.g. a retried upload): each
    member is hashed while spooled and kept only while a blob the engine
    will ask for; the first ``open`` of a blob reads up to it."""

    def __init__(self, source, name):
        self.source = source
        self.name = name
        self.lock = threading.Lock()
        self.wanted = set()
        self.spooled = {}     # digest -> (path, size), not yet handed out
        self.tar = self.stream = self.members = None

    def take(self, digest, cancel):
        with self.lock:
            if digest not in self.spooled:
                self.wanted.add(digest)
                self._read_until(digest, cancel)
            self.wanted.discard(digest)
            return self.spooled.pop(digest)

    def _read_until(self, digest, cancel):
        from tripleo_containers.registry import errors
        # An open stream goes on from where it stopped; past its end one
        # more save is read (the blob was handed out before: a retry).
        while True:
            fresh = self.tar is None
            if fresh:
                self.stream = _GeneratorReader(self.source.save(self.name))
            try:
                if fresh:
                    self.tar = tarfile.open(fileobj=self.stream, mode="r|")
                    # one iterator: a new one would start again at the first member
                    self.members = iter(self.tar)
                for member in self.members:
                    if cancel is not None and cancel.is_set():
                        raise errors.Cancelled("cancelled")
                    if not member.isfile():
                        continue
                    named = _oci_digest(member.name)
                    if named is not None and named != digest and (
                            named not in self.wanted or named in self.spooled):
                        continue  # Docker 25+ names blobs by digest: not needed
                    found, path = _spool(self.tar.extractfile(member), self.source.folder)
                    if found in self.wanted and found not in self.spooled:
                        self.spooled[found] = (path, member.size)
                    else:
                        _unlink(path)
                    if found == digest:
                        return
            except (tarfile.TarError, OSError) as e:
                self._end()
                raise DaemonError("Docker daemon: reading %s failed: %s" % (self.name, _short(e)))
            self._end()
            if fresh:
                raise DaemonError(
                    "Docker daemon: the saved image %s lacks %s (its content does not "
                    "match its own inspect data)" % (self.name, digest))

    def _end(self):
        if self.stream is not None:
            self.stream.close()
        self.tar = self.stream = self.members = None

    def close(self):
        self._end()
        for path, _ in self.spooled.values():
            _unlink(path)
        self.spooled = {}


class DaemonSource(object):
    """The copy engine's source for images in a Docker daemon: digests from
    ``inspect`` up front, sizes once read, a schema2 manifest written by
    us (layers uncompressed).  Disk: the spooled members of the images
    being read that the engine has not taken yet."""

    def __init__(self, docker_client):
        self.docker = docker_client
        self.lock = threading.Lock()
        self.images = {}    # name -> DaemonImage
        self.saves = {}     # name -> _Save
        self.folder = tempfile.mkdtemp(prefix="tripleo-daemon-")

    def blobs(self, job):
        image = inspect(self.docker, job.source.name)
        with self.lock:
            self.images[image.name] = image
        return dict((d, None) for d in [image.id] + image.diff_ids)

    def _save(self, name):
        with self.lock:
            save = self.saves.get(name)
            if save is None:
                save = self.saves[name] = _Save(self, name)
            return save

    def expect(self, handle, digests):
        save = self._save(handle.name)
        with save.lock:
            save.wanted.update(digests)

    def open_blob(self, handle, digest, on_bytes, cancel):
        path, size = self._save(handle.name).take(digest, cancel)
        return _FileBody(path, size, on_bytes, cancel), size

    def manifest(self, job, sizes):
        from tripleo_containers.registry import client as client_mod
        with self.lock:
            image = self.images[job.source.name]
        data = build_manifest(image, sizes).encode("utf-8")
        return client_mod.Manifest(data, DOCKER_MANIFEST, client_mod.sha256_digest(data))

    def save(self, name):
        import docker
        try:
            return self.docker.api.get_image(name, chunk_size=CHUNK)
        except docker.errors.APIError as e:
            raise DaemonError("Docker daemon: saving %s failed: %s" % (name, _short(e)))

    def close(self):
        with self.lock:
            saves, self.saves = list(self.saves.values()), {}
        for save in saves:
            # A worker left behind by a cancel may still hold the lock in a
            # daemon read: its spool goes with the folder, not waited for.
            if save.lock.acquire(blocking=False):
                try:
                    save.close()
                finally:
                    save.lock.release()
        shutil.rmtree(self.folder, ignore_errors=True)


class _GeneratorReader(object):
    """File-like read() over docker-py's chunk generator (tarfile stream mode)."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.chunk = b""
        self.pos = 0

    def read(self, size=-1):
        # tarfile reads 10 KiB at a time: slicing what is left of a 1 MiB
        # chunk on every read would copy each byte about a hundred times
        parts = []
        while size != 0:
            if self.pos >= len(self.chunk):
                try:
                    self.chunk, self.pos = next(self.chunks), 0
                except StopIteration:
                    break
                continue
            end = len(self.chunk) if size < 0 else min(len(self.chunk), self.pos + size)
            parts.append(self.chunk[self.pos:end])
            if size > 0:
                size -= end - self.pos
            self.pos = end
        return b"".join(parts)

    def close(self):
        close = getattr(self.chunks, "close", None)
        if close:
            close()


def _oci_digest(name):
    """The digest an OCI-layout member's name says (``blobs/sha256/<hex>``)."""
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "blobs" and parts[1] == "sha256" and len(parts[2]) == 64:
        return "sha256:" + parts[2]
    return None


def _spool(fileobj, folder):
    """Hash a tar member while copying it to a file in ``folder``; returns
    (digest, path)."""
    h = hashlib.sha256()
    fd, path = tempfile.mkstemp(dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                chunk = fileobj.read(CHUNK)
                if not chunk:
                    break
                h.update(chunk)
                out.write(chunk)
    except BaseException:
        _unlink(path)
        raise
    return "sha256:" + h.hexdigest(), path


def build_manifest(image, sizes):
    """Docker schema2 manifest text for the daemon image (layers uncompressed)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": sizes[image.id], "digest": image.id},
        "layers": [{"mediaType": LAYER_TAR, "size": sizes[d], "digest": d}
                   for d in image.diff_ids],
    }
    return json.dumps(doc, indent=3)


def upload(config_files, daemon_url=None, insecure=(), ca_bundles=(),
           credentials_file=None, default_destination=None, progress=None,
           timeout=None, destinations=(), jobs=4, cancel=None):
    """Push every image of ``config_files`` from the Docker daemon to its
    push destination with the copy engine; returns [ImageResult] in file
    order.

    The images file is read as for registry uploads: the daemon image is
    the entry's imagename (what `image build` names it), the destination
    its push target.  Raises InputError / DaemonUnreachable for the whole
    run; per-image problems (image not in the daemon, ...) are results
    with status 'failed'; setting ``cancel`` ends the run early.
    """
    from tripleo_containers.copy import engine
    from tripleo_containers.copy import images_file
    from tripleo_containers.copy import upload as upload_mod
    from tripleo_containers.registry import connect as registry_connect

    images = images_file.load(config_files)
    upload_mod.check_destinations(destinations)
    items = images_file.jobs_from(images, default_destination or upload_mod._default_destination,
                                  destinations)
    insecure = list(insecure or ()) + [h for h in images.insecure if h not in (insecure or ())]
    docker_client = connect(daemon_url)
    progress = progress or engine.Progress()
    progress.starting(len(items))
    for item in items:
        if not isinstance(item, engine.CopyJob):
            progress.image_done(item)
    jobs_ = [engine.CopyJob(DaemonRef(str(i.source)), i.destination)
             for i in items if isinstance(i, engine.CopyJob)]
    source = DaemonSource(docker_client)
    try:
        with registry_connect.make_client(insecure, ca_bundles, credentials_file,
                                          timeout=timeout,
                                          concurrency=engine.concurrency(jobs),
                                          cancel=cancel) as registry_client:
            results, _ = engine.Engine(registry_client, jobs=jobs, progress=progress,
                                       source=source).run(jobs_)
    finally:
        source.close()
        docker_client.close()
    copied = iter(results)
    return [next(copied) if isinstance(i, engine.CopyJob) else i for i in items]
