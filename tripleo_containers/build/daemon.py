"""Upload images from a local Docker daemon (where kolla-build puts them).

Read path: docker-py.  ``inspect`` gives the image ID (= sha256 of its
config JSON) and the layer diff_ids before any data moves; ``save`` streams
a docker-save tar (legacy ``<id>/layer.tar`` + ``<id>.json``, or the OCI
layout ``blobs/sha256/<hex>`` of Docker 25+; both hold the config bytes and
the *uncompressed* layer tars).

Write path: our registry client (same transport, auth, TLS, insecure rules
as registry-to-registry upload), not ``docker push``:

* Layers are pushed uncompressed, media type
  ``application/vnd.docker.image.rootfs.diff.tar``, so each layer's digest is
  its diff_id.  That makes digests deterministic and known up front (no
  gzip whose bytes depend on the zlib version and level), lets us HEAD/mount
  every blob before reading anything from the daemon, and costs no CPU.
  The price is bytes: a real layer is 2-3x its gzip size on the wire and in
  the registry.  docker, podman and containerd pull such layers.  (kolla's
  own ``--push`` goes through the daemon and gzips; use it when size
  matters more than these guarantees.)
* Each blob goes once per destination registry: present -> skipped, present
  in another repository we pushed to in this run -> mounted, else uploaded
  (POST + one PUT with ``digest=``), the registry verifying the digest.
* The save stream is read once; every file in it is hashed while spooled to
  one temporary file at a time (disk peak: the largest missing layer), and
  kept only if its sha256 is a blob we still need: digests are checked on
  our side before the registry checks them again.
* The manifest is Docker schema2, written by us; its digest is the sha256 of
  the exact bytes we PUT, and the registry's answer is checked against it.
"""
import hashlib
import json
import os
import tarfile
import tempfile

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
    """A sized, re-iterable request body reading a spooled file."""

    def __init__(self, path, size, on_bytes=None):
        self.path = path
        self.size = size
        self.on_bytes = on_bytes

    def __len__(self):
        return self.size

    def __iter__(self):
        with open(self.path, "rb") as f:
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    return
                if self.on_bytes:
                    self.on_bytes(len(chunk))
                yield chunk


class Pusher(object):
    """Pushes daemon images with a registry Client; remembers, per
    destination registry, which repository holds each blob (for mounts)."""

    def __init__(self, registry_client, docker_client, on_bytes=None):
        self.client = registry_client
        self.docker = docker_client
        self.on_bytes = on_bytes
        self.placed = {}    # (api_host, digest) -> Reference of a repo holding it

    def _blob_size(self, repo, digest):
        resp = self.client.transport.request(
            "HEAD", repo.api_host, "/v2/%s/blobs/%s" % (repo.repository, digest),
            scopes=self.client.scopes(repo, push=True), expected=(200, 404),
            follow_redirects=True)
        resp.close()
        if resp.status_code != 200:
            return None
        length = resp.headers.get("Content-Length")
        return int(length) if length and length.isdigit() else None

    def _ensure(self, repo, digest):
        """(size, None) if the blob is (now) in repo, else (None, upload URL)."""
        size = self._blob_size(repo, digest)
        if size is not None:
            self.placed.setdefault((repo.api_host, digest), repo)
            return size, None
        other = self.placed.get((repo.api_host, digest))
        if other is not None and other.repository != repo.repository:
            mounted, location = self.client.mount_blob(repo, digest, other)
            if mounted:
                return self._blob_size(repo, digest), None
            return None, location
        return None, None

    def push(self, name, destination):
        """Push daemon image ``name`` to ``destination`` (a Reference);
        returns (manifest digest, bytes uploaded, status)."""
        from tripleo_containers.registry import client as client_mod

        image = inspect(self.docker, name)
        wanted = []
        for digest in [image.id] + image.diff_ids:
            if digest not in wanted:
                wanted.append(digest)
        sizes, locations = {}, {}
        for digest in wanted:
            sizes[digest], locations[digest] = self._ensure(destination, digest)
        missing = [d for d in wanted if sizes[d] is None]
        config, sent = None, 0
        if sizes[image.id] is not None:
            config = self._registry_config(destination, image.id)
        if config is None or missing:
            config, sent = self._from_save(image, missing, destination, locations, sizes)
        data = build_manifest(config, image, sizes).encode("utf-8")
        digest = client_mod.sha256_digest(data)
        present = self.client.head_manifest(destination, push=True)
        if present is not None and present.digest == digest:
            return digest, sent, "already present"
        self.client.put_manifest(destination, client_mod.Manifest(data, DOCKER_MANIFEST, digest))
        return digest, sent, "copied"

    def _registry_config(self, repo, digest):
        """The config blob from the destination (a re-run needs no save);
        None if it is not what it should be (then the save stream has it)."""
        from tripleo_containers.registry import errors
        try:
            return self.client.read_blob(repo, digest, 16 << 20)
        except (errors.DigestMismatch, errors.TooLarge):
            return None

    def _from_save(self, image, missing, repo, locations, sizes):
        """Read the save stream once: returns (config bytes, bytes uploaded)
        after uploading every missing blob found in it."""
        missing = set(missing)
        config, sent = None, 0
        stream = _GeneratorReader(self._save(image))
        spool_dir = tempfile.mkdtemp(prefix="tripleo-daemon-")
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    keep = member.size <= (16 << 20) or bool(missing - {image.id})
                    digest, path, small = _spool(tar.extractfile(member), member.size,
                                                 spool_dir, keep)
                    try:
                        if digest == image.id:
                            config = small
                        if digest in missing:
                            body = small if small is not None else _FileBody(
                                path, member.size, self.on_bytes)
                            self._upload(repo, digest, member.size, body, locations.get(digest))
                            sent += member.size
                            sizes[digest] = member.size
                            missing.discard(digest)
                    finally:
                        if path:
                            os.unlink(path)
                    if config is not None and not missing:
                        break
        except (tarfile.TarError, OSError) as e:
            raise DaemonError("Docker daemon: reading %s failed: %s" % (image.name, _short(e)))
        finally:
            stream.close()
            for leftover in os.listdir(spool_dir):
                os.unlink(os.path.join(spool_dir, leftover))
            os.rmdir(spool_dir)
        if missing or config is None:
            raise DaemonError(
                "Docker daemon: the saved image %s lacks %s (its content does not "
                "match its own inspect data)" % (
                    image.name, ", ".join(sorted(missing)) or "its config"))
        return config, sent

    def _save(self, image):
        import docker
        try:
            return self.docker.api.get_image(image.name, chunk_size=CHUNK)
        except docker.errors.APIError as e:
            raise DaemonError("Docker daemon: saving %s failed: %s" % (image.name, _short(e)))

    def _upload(self, repo, digest, size, body, location):
        try:
            self.client.push_blob(repo, digest, size, body, location)
        except exceptions.Error:
            # The blob may have landed although the answer was lost.
            if self._blob_size(repo, digest) is None:
                self.client.push_blob(repo, digest, size, body, None)
        self.placed.setdefault((repo.api_host, digest), repo)


class _GeneratorReader(object):
    """File-like read() over docker-py's chunk generator (tarfile stream mode)."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.buffer = b""

    def read(self, size=-1):
        while size < 0 or len(self.buffer) < size:
            try:
                self.buffer += next(self.chunks)
            except StopIteration:
                break
        if size < 0:
            data, self.buffer = self.buffer, b""
        else:
            data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def close(self):
        close = getattr(self.chunks, "close", None)
        if close:
            close()


def _spool(fileobj, size, folder, keep):
    """Hash a tar member; small ones are kept in memory, big ones spooled to
    a file in ``folder`` when ``keep``.  Returns (digest, path, bytes)."""
    h = hashlib.sha256()
    small = size <= (16 << 20)
    parts = [] if small else None
    path = None
    out = None
    if not small and keep:
        fd, path = tempfile.mkstemp(dir=folder)
        out = os.fdopen(fd, "wb")
    try:
        while True:
            chunk = fileobj.read(CHUNK)
            if not chunk:
                break
            h.update(chunk)
            if parts is not None:
                parts.append(chunk)
            elif out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return "sha256:" + h.hexdigest(), path, b"".join(parts) if parts is not None else None


def build_manifest(config, image, sizes):
    """Docker schema2 manifest text for the daemon image (layers uncompressed)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(config), "digest": image.id},
        "layers": [{"mediaType": LAYER_TAR, "size": sizes[d], "digest": d}
                   for d in image.diff_ids],
    }
    return json.dumps(doc, indent=3)


def upload(config_files, daemon_url=None, insecure=(), ca_bundles=(),
           credentials_file=None, default_destination=None, on_result=None,
           timeout=None):
    """Push every image of ``config_files`` from the Docker daemon to its
    push destination; returns [ImageResult] in file order.

    The images file is read as for registry uploads: the daemon image is
    the entry's imagename (what `image build` names it), the destination
    its push target.  Raises InputError / DaemonUnreachable for the whole
    run; per-image problems (image not in the daemon, ...) are results
    with status 'failed'.
    """
    from tripleo_containers.copy import engine
    from tripleo_containers.copy import images_file
    from tripleo_containers.copy import upload as upload_mod
    from tripleo_containers.registry import connect as registry_connect

    images = images_file.load(config_files)
    items = images_file.jobs_from(images, default_destination or upload_mod._default_destination)
    insecure = list(insecure or ()) + [h for h in images.insecure if h not in (insecure or ())]
    docker_client = connect(daemon_url)
    registry_client = registry_connect.make_client(insecure, ca_bundles, credentials_file,
                                                   timeout=timeout)
    pusher = Pusher(registry_client, docker_client)
    results = []
    try:
        for item in items:
            if isinstance(item, engine.CopyJob):
                source, target = str(item.source), str(item.destination)
                try:
                    digest, sent, status = pusher.push(source, item.destination)
                    item = engine.ImageResult(source, target, status, digest, sent)
                except exceptions.Error as e:
                    item = engine.ImageResult(source, target, engine.FAILED, error=str(e))
            results.append(item)
            if on_result:
                on_result(item)
    finally:
        registry_client.close()
        docker_client.close()
    return results
