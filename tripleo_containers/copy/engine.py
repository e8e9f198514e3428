"""Copy many images between registries, moving each unique blob once.

The order of work is what makes this fast and safe:

1. read every source manifest (HEAD, and GET only when the destination does
   not already hold the same digest) on the metadata pool: manifests are tiny;
2. plan across ALL images: per destination registry, which blobs each
   destination repository lacks (one HEAD per repository/blob pair);
3. upload each missing unique blob once per destination registry (biggest
   first, ``jobs`` at a time: destination ingest is the bottleneck; blobs of
   2 MiB or less join the metadata pool once the first big one is in, since
   they cost round trips, not bandwidth), and as soon as it has committed
   mount it into every other repository that needs it (a mount costs about
   what a HEAD does);
4. push an image's manifests (list children by digest, then the tag) as soon
   as its own blobs are all in its repository.

A failed image never stops the others; its result carries the error text.
"""
import collections
import logging
import threading
import time
from concurrent import futures

from tripleo_containers.registry import errors

LOG = logging.getLogger(__name__)

COPIED = "copied"
PRESENT = "already present"
FAILED = "failed"
WOULD_COPY = "would copy"
# Uploads up to this size run on the metadata pool (see _execute).
SMALL_BLOB = 2 * 1024 * 1024
# Threads for manifests, HEADs, mounts, small uploads.
META_JOBS = 16


class CopyJob(object):
    __slots__ = ("source", "destination")

    def __init__(self, source, destination):
        self.source = source
        self.destination = destination

    def __repr__(self):
        return "CopyJob(%s -> %s)" % (self.source, self.destination)


class ImageResult(object):
    __slots__ = ("source", "destination", "status", "digest", "bytes_moved", "error")

    def __init__(self, source, destination, status, digest=None, bytes_moved=0,
                 error=None):
        self.source = source
        self.destination = destination
        self.status = status
        self.digest = digest
        self.bytes_moved = bytes_moved
        self.error = error

    def __repr__(self):
        return "ImageResult(%s, %s, %s)" % (self.destination, self.status, self.error)


class Plan(object):
    """What a run would do; ``dry_run`` stops after computing it."""

    def __init__(self):
        self.images = 0
        self.images_present = 0
        self.images_failed = 0
        self.unique_blobs = 0
        self.uploads = 0
        self.bytes_to_move = 0
        self.blobs_present = 0
        self.mounts = 0

    def as_dict(self):
        return dict(self.__dict__)


class Progress(object):
    """Callbacks from the engine; the command draws a bar or logs. Called
    from worker threads, so implementations must be thread-safe."""

    def starting(self, images):
        """Called once, before any image_done, with the number of images."""

    def planned(self, plan):
        pass

    def bytes_moved(self, count):
        pass

    def image_done(self, result):
        pass


def _error_text(exc):
    if isinstance(exc, errors.RegistryError) or isinstance(exc, ValueError):
        return str(exc)
    return "%s: %s" % (exc.__class__.__name__, exc)


class _Image(object):
    def __init__(self, index, job):
        self.index = index
        self.job = job
        self.digest = None
        self.manifests = []      # children first, then the top manifest
        self.blobs = {}          # digest -> size
        self.pending = set()
        self.status = None
        self.error = None
        self.bytes_moved = 0
        self.pushing = False

    @property
    def repo_key(self):
        return (self.job.destination.api_host, self.job.destination.repository)


class _Tracker(object):
    """Counts outstanding tasks so run() can wait for work that spawns work."""

    def __init__(self):
        self.cond = threading.Condition()
        self.outstanding = 0

    def submit(self, pool, fn, *args):
        with self.cond:
            self.outstanding += 1
        try:
            return pool.submit(self._wrap, fn, *args)
        except RuntimeError:
            self.done()
            raise

    def _wrap(self, fn, *args):
        try:
            fn(*args)
        except Exception:  # a bug in a task must not hang the run
            LOG.exception("copy task failed unexpectedly")
        finally:
            self.done()

    def done(self):
        with self.cond:
            self.outstanding -= 1
            self.cond.notify_all()

    def wait(self):
        with self.cond:
            while self.outstanding:
                self.cond.wait(1.0)


class Engine(object):
    def __init__(self, client, jobs=4, meta_jobs=META_JOBS, upload_attempts=3,
                 retry_delay=1.0, progress=None, sleep=time.sleep):
        self.client = client
        self.jobs = max(1, int(jobs))
        self.meta_jobs = max(1, int(meta_jobs))
        self.upload_attempts = max(1, int(upload_attempts))
        self.retry_delay = retry_delay
        self.progress = progress or Progress()
        self.sleep = sleep
        self._lock = threading.Lock()

    # -- phase 1: manifests --------------------------------------------------

    def _read(self, image, dry_run):
        job = image.job
        # The destination first: on a first run it has nothing, and the
        # source manifest is then fetched with one GET (no HEAD before it).
        # When it has the tag, a HEAD at the source (which registries such
        # as Docker Hub do not count as a pull) decides whether to copy.
        dst = self.client.head_manifest(job.destination, push=not dry_run)
        ref = job.source
        if dst is not None and dst.digest:
            src = self.client.head_manifest(job.source)
            if src is None:
                raise self._not_found(job)
            if src.digest == dst.digest:
                image.digest = src.digest
                image.status = PRESENT
                return
            if src.digest:
                ref = job.source.with_digest(src.digest)
        try:
            top = self.client.get_manifest(ref)
        except errors.NotFound:
            raise self._not_found(job)
        image.digest = top.digest
        if dst is not None and dst.digest == top.digest:
            image.status = PRESENT
            return
        children = []
        for child in top.children:
            manifest = self.client.get_manifest(job.source.with_digest(child.digest))
            if manifest.is_list:
                raise errors.UnsupportedManifest(
                    "image %s: nested manifest lists are not supported" % job.source)
            children.append(manifest)
        image.manifests = children + [top]
        for manifest in image.manifests:
            for blob in manifest.blobs:
                if blob.size is None:
                    raise errors.UnsupportedManifest(
                        "image %s: blob %s has no size" % (job.source, blob.digest))
                image.blobs[blob.digest] = blob.size

    @staticmethod
    def _not_found(job):
        return errors.NotFound("image %s not found (no such repository or tag at %s)"
                               % (job.source, job.source.registry))

    def _fail(self, image, exc):
        with self._lock:
            if image.status in (FAILED, COPIED, PRESENT):
                return False
            image.status = FAILED
            image.error = _error_text(exc)
        self._report(image)
        return True

    def _report(self, image):
        self.progress.image_done(self._result(image))

    def _result(self, image):
        return ImageResult(str(image.job.source), str(image.job.destination),
                           image.status, image.digest, image.bytes_moved, image.error)

    # -- the run ------------------------------------------------------------

    def run(self, jobs, dry_run=False):
        """Copy ``jobs`` (CopyJob list); returns ([ImageResult], Plan)."""
        images = [_Image(i, job) for i, job in enumerate(jobs)]
        plan = Plan()
        plan.images = len(images)
        with futures.ThreadPoolExecutor(self.meta_jobs, "meta") as meta, \
                futures.ThreadPoolExecutor(self.jobs, "upload") as upload:
            self.meta, self.upload = meta, upload
            reads = [meta.submit(self._read, image, dry_run) for image in images]
            for image, fut in zip(images, reads):
                try:
                    fut.result()
                except Exception as exc:
                    self._fail(image, exc)
            for image in images:
                if image.status == PRESENT:
                    self._report(image)
            work = [im for im in images if im.status is None]
            blobs = self._plan(work, plan, dry_run)
            plan.images_present = sum(1 for im in images if im.status == PRESENT)
            self.progress.planned(plan)
            if dry_run:
                for image in work:
                    if image.status is None:
                        image.status = WOULD_COPY
            else:
                self._execute(work, blobs)
        plan.images_failed = sum(1 for im in images if im.status == FAILED)
        return [self._result(im) for im in images], plan

    # -- phase 2: plan ------------------------------------------------------

    def _plan(self, work, plan, dry_run):
        """Per (destination registry, digest): size, sources, repos lacking it."""
        pairs = collections.OrderedDict()  # (registry, repo, digest) -> image list
        for image in work:
            host, repo = image.repo_key
            for digest in image.blobs:
                pairs.setdefault((host, repo, digest), []).append(image)
        # A real run HEADs a blob only in the first repository that needs
        # it: the others get a mount, which costs what a HEAD does and is
        # harmless where the blob already is. A dry run HEADs every pair so
        # that its plan is exact.
        heads = {}
        checked = set()
        for key in pairs:
            host, repo, digest = key
            if not dry_run and (host, digest) in checked:
                heads[key] = None
                continue
            checked.add((host, digest))
            dst = pairs[key][0].job.destination
            heads[key] = self.meta.submit(self.client.blob_exists,
                                          _repo(dst, repo), digest, not dry_run)
        blobs = collections.OrderedDict()
        for key, fut in heads.items():
            host, repo, digest = key
            try:
                present = fut is not None and fut.result()
            except Exception as exc:
                for image in pairs[key]:
                    self._fail(image, exc)
                continue
            entry = blobs.get((host, digest))
            if entry is None:
                first = pairs[key][0]
                entry = blobs[(host, digest)] = dict(
                    size=first.blobs[digest], sources=[], present=[], missing=[],
                    registry=first.job.destination)
            for image in pairs[key]:
                src = image.job.source
                if all(s.name != src.name for s in entry["sources"]):
                    entry["sources"].append(src)
            (entry["present"] if present else entry["missing"]).append(repo)
            if present:
                plan.blobs_present += 1
            else:
                for image in pairs[key]:
                    image.pending.add(digest)
        plan.unique_blobs = len(blobs)
        owner = {}
        for image in work:
            for digest in image.pending:
                owner.setdefault((image.repo_key, digest), image)
        for (host, digest), entry in blobs.items():
            missing = entry["missing"]
            if not missing:
                continue
            if entry["present"]:
                plan.mounts += len(missing)
            else:
                plan.uploads += 1
                plan.bytes_to_move += entry["size"]
                plan.mounts += len(missing) - 1
                target = owner.get(((host, missing[0]), digest))
                if dry_run and target is not None:
                    target.bytes_moved += entry["size"]
        self._owner = owner
        return blobs

    # -- phase 3: execute ---------------------------------------------------

    def _execute(self, work, blobs):
        tracker = self._tracker = _Tracker()
        for image in work:
            if image.status is None and not image.pending:
                self._push_when_ready(image)
        by_repo = collections.defaultdict(list)
        for image in work:
            by_repo[image.repo_key].append(image)
        self._by_repo = by_repo
        uploads = []
        for (host, digest), entry in blobs.items():
            if not entry["missing"]:
                continue
            if entry["present"]:
                frm = _repo(entry["registry"], entry["present"][0])
                for repo in entry["missing"]:
                    tracker.submit(self.meta, self._mount, entry, digest, repo, frm)
            else:
                uploads.append((entry["size"], digest, entry))
        # Biggest first: the long transfers start at once and the small ones
        # fill the gaps at the end instead of one big blob finishing last.
        uploads.sort(key=lambda u: -u[0])
        # Small blobs (configs, thin layers) cost latency, not bandwidth:
        # queued behind the big layers on the upload pool they kept the
        # cores half idle at the end of a run, with every manifest waiting
        # for its config. They run on the metadata pool instead, released
        # when the first big upload is done so that the biggest blobs still
        # start (and land) first.
        small = [u for i, u in enumerate(uploads)
                 if i >= self.jobs and u[0] <= SMALL_BLOB]
        self._small = small
        big = [u for i, u in enumerate(uploads)
               if i < self.jobs or u[0] > SMALL_BLOB]
        for size, digest, entry in big:
            tracker.submit(self.upload, self._upload_then_release, entry, digest,
                           entry["missing"][0], None, entry["missing"][1:])
        tracker.wait()
        for image in work:
            if image.status is None:  # pragma: no cover - defensive
                self._fail(image, RuntimeError("internal error: image never completed"))

    def _upload(self, entry, digest, repo, location, then_mount):
        """Upload one blob into ``repo`` (whole-upload retries), then mount it
        into ``then_mount``. ``location`` is an upload session from a 202
        mount answer, used for the first attempt."""
        dst = _repo(entry["registry"], repo)
        if not self._wanted(dst, digest, then_mount):
            return
        last = None
        for attempt in range(self.upload_attempts):
            src = entry["sources"][attempt % len(entry["sources"])]
            try:
                if attempt == 0 and location is None and src.api_host == dst.api_host:
                    mounted, location = self.client.mount_blob(dst, digest, src)
                    if mounted:
                        self._landed(entry, digest, repo, then_mount, 0)
                        return
                sent = self.client.copy_blob(src, dst, digest, entry["size"],
                                             location=location,
                                             on_bytes=self.progress.bytes_moved)
                self._landed(entry, digest, repo, then_mount, sent)
                return
            except Exception as exc:
                last = exc
                location = None
                LOG.debug("upload of %s to %s failed: %s", digest, dst.name,
                          _error_text(exc))
                # A lost PUT response looks like a failure although the blob
                # landed; a retried PUT then gets BLOB_UPLOAD_UNKNOWN.
                try:
                    if self.client.blob_exists(dst, digest, True):
                        self._landed(entry, digest, repo, then_mount, entry["size"])
                        return
                except Exception:
                    pass
                if not _retryable(exc) or attempt + 1 == self.upload_attempts:
                    break
                self.sleep(self.retry_delay * (2 ** attempt))
        self._blob_failed(dst.api_host, digest, [repo] + list(then_mount), last)

    def _upload_then_release(self, entry, digest, repo, location, then_mount):
        try:
            self._upload(entry, digest, repo, location, then_mount)
        finally:
            with self._lock:
                small, self._small = self._small, []
            for size, digest, entry in small:
                self._tracker.submit(self.meta, self._upload, entry, digest,
                                     entry["missing"][0], None, entry["missing"][1:])

    def _wanted(self, dst, digest, then_mount):
        """False when every image needing this blob here already failed."""
        repos = [dst.repository] + list(then_mount)
        for repo in repos:
            for image in self._by_repo.get((dst.api_host, repo), ()):
                if digest in image.pending and image.status is None:
                    return True
        return False

    def _landed(self, entry, digest, repo, then_mount, sent):
        host = entry["registry"].api_host
        owner = self._owner.get(((host, repo), digest))
        if owner is not None and sent:
            with self._lock:
                owner.bytes_moved += sent
        self._blob_in(host, repo, digest)
        frm = _repo(entry["registry"], repo)
        for other in then_mount:
            self._tracker.submit(self.meta, self._mount, entry, digest, other, frm)

    def _mount(self, entry, digest, repo, frm):
        dst = _repo(entry["registry"], repo)
        try:
            mounted, location = self.client.mount_blob(dst, digest, frm)
        except Exception as exc:
            LOG.debug("mount of %s into %s failed: %s", digest, dst.name, exc)
            mounted, location = False, None
        if mounted:
            self._blob_in(dst.api_host, repo, digest)
            return
        # 202: the registry would not mount (e.g. no pull on `from`) and gave
        # an upload session instead; upload there under the upload limit.
        self._tracker.submit(self.upload, self._upload, entry, digest, repo,
                             location, [])

    def _blob_in(self, host, repo, digest):
        ready = []
        with self._lock:
            for image in self._by_repo.get((host, repo), ()):
                if digest in image.pending:
                    image.pending.discard(digest)
                    if not image.pending and image.status is None and not image.pushing:
                        image.pushing = True
                        ready.append(image)
        for image in ready:
            self._tracker.submit(self.meta, self._push, image)

    def _push_when_ready(self, image):
        image.pushing = True
        self._tracker.submit(self.meta, self._push, image)

    def _blob_failed(self, host, digest, repos, exc):
        LOG.debug("blob %s failed on %s: %s", digest, host, _error_text(exc))
        for repo in repos:
            for image in self._by_repo.get((host, repo), ()):
                if digest in image.pending:
                    self._fail(image, exc)

    def _push(self, image):
        dst = image.job.destination
        try:
            for manifest in image.manifests[:-1]:
                self.client.put_manifest(dst.with_digest(manifest.digest), manifest)
            self.client.put_manifest(dst, image.manifests[-1])
        except Exception as exc:
            self._fail(image, exc)
            return
        with self._lock:
            if image.status is not None:
                return
            image.status = COPIED
        self._report(image)


def _repo(registry_ref, repository):
    """A Reference for ``repository`` on the registry of ``registry_ref``."""
    from tripleo_containers.registry import reference
    return reference.Reference(registry_ref.registry, repository)


def _retryable(exc):
    if isinstance(exc, errors.NotFound) and exc.code == "BLOB_UPLOAD_UNKNOWN":
        return True  # the session expired or was lost: start a new one
    if isinstance(exc, (errors.Unauthorized, errors.NotFound, errors.PushRefused,
                        errors.TLSFailure, errors.UnsupportedManifest)):
        return False
    return True
