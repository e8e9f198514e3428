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
   what a HEAD does); a blob that several destination registries lack is
   read from the source once and streamed into all of them at once (a
   destination whose upload fails gets it from one that has it later: the
   source may be far away, the destinations are near);
4. push an image's manifests (list children by digest, then the tag) as soon
   as its own blobs are all in its repository.

A failed image never stops the others; its result carries the error text.

The source is a registry, or an ``Source`` (the Docker daemon,
build/daemon.py): that one gives blob digests in step 1, sizes only once a
blob is read or the destination's HEAD says it (step 2 then HEADs every
repository/blob pair), and its manifest in step 4, written once every
size is known; a blob read from it lands once per destination registry
and is read back from there for the other destination registries.
"""
import collections
import dataclasses
import logging
import threading
import time
from concurrent import futures

from tripleo_containers import exceptions
from tripleo_containers.registry import errors
from tripleo_containers.registry import reference

LOG = logging.getLogger(__name__)

COPIED = "copied"
PRESENT = "already present"
FAILED = "failed"
WOULD_COPY = "would copy"
REPAIRED = "repaired"
WOULD_REPAIR = "would repair"
INTERRUPTED = "interrupted"
# Uploads up to this size run on the metadata pool (see _Run._execute).
SMALL_BLOB = 2 * 1024 * 1024
# Threads for manifests, HEADs, mounts, small uploads.
META_JOBS = 16
# Every image's first look (destination HEAD, source HEAD or GET) goes out
# at once, up to this many: a no-op re-run against a far source then costs
# one round trip, not one per wave of META_JOBS.
READ_JOBS = 64
# Uploads start ``jobs`` at a time (what a near destination can ingest) and
# the limit grows by ``jobs`` every TUNE_PERIOD while the bytes moved per
# second grow by GROWTH or more: a far source with capped connections needs
# more streams in flight than the destination does.  Never above this.
MAX_UPLOAD_JOBS = 32
TUNE_PERIOD = 2.0
GROWTH = 1.10
# Small uploads wait for the first big one to land (near destination: the
# biggest start first), but never longer than this (far source: the first
# big one may take most of the run).
SMALL_WAIT = 1.0
# After a cancel, how long in-flight work may take to notice before the run
# abandons it (and cancels the upload sessions it left open).
GRACE = 1.0
# How often the main thread looks at the cancel event while it waits.
_TICK = 0.2
# Manifest PUTs of one image answered "blob unknown" (another run or a
# registry cache raced this one): each is followed by a repair of its blobs.
PUSH_ATTEMPTS = 3
_BLOB_UNKNOWN = ("MANIFEST_BLOB_UNKNOWN", "DIGEST_INVALID", "BLOB_UNKNOWN")


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


@dataclasses.dataclass
class Plan(object):
    """What a run would do; ``dry_run`` stops after computing it."""
    images: int = 0
    images_present: int = 0
    images_failed: int = 0
    unique_blobs: int = 0
    uploads: int = 0
    bytes_to_move: int = 0
    blobs_present: int = 0
    mounts: int = 0
    # uploads whose size the source says only once read (bytes_to_move
    # leaves them out)
    unsized: int = 0


@dataclasses.dataclass(eq=False)
class BlobEntry(object):
    """One unique blob on one destination registry, as planned."""
    registry: object          # a Reference on the destination registry
    digest: str
    size: int
    sources: list = dataclasses.field(default_factory=list)   # References
    present: list = dataclasses.field(default_factory=list)   # repositories
    missing: list = dataclasses.field(default_factory=list)   # repositories
    # The same blob for other destination registries: uploaded from this
    # entry's copy once it has landed (in ``landed_in``).
    followers: list = dataclasses.field(default_factory=list)
    landed_in: str = None


class Source(object):
    """Where images come from when it is not a registry (the Docker daemon:
    build/daemon.py). The engine plans with what the source knows: blob
    digests up front, sizes maybe only once a blob is read (None). A job's
    ``source`` is the source's own handle, not a registry Reference; its
    ``name`` identifies the image."""

    def blobs(self, job):
        """{digest: size or None} of the image's config and layers."""
        raise NotImplementedError

    def expect(self, handle, digests):
        """Hint: these blobs of the image will be opened (the others are at
        the destination already)."""

    def open_blob(self, handle, digest, on_bytes, cancel):
        """(sized iterable body, size) of one blob, verified while read;
        a body's iteration raises errors.Cancelled once ``cancel`` is set."""
        raise NotImplementedError

    def manifest(self, job, sizes):
        """The image manifest (registry.client.Manifest) given every blob's
        size; pushed after its blobs."""
        raise NotImplementedError


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
    if isinstance(exc, (exceptions.Error, ValueError)):
        return str(exc)
    return "%s: %s" % (exc.__class__.__name__, exc)


@dataclasses.dataclass(eq=False)
class _Image(object):
    index: int
    job: CopyJob
    digest: str = None
    manifests: list = dataclasses.field(default_factory=list)  # children, then top
    blobs: dict = dataclasses.field(default_factory=dict)      # digest -> size
    pending: set = dataclasses.field(default_factory=set)
    status: str = None
    error: str = None
    bytes_moved: int = 0
    pushing: bool = False
    verifying: bool = False   # present by manifest digest, blobs to be checked

    @property
    def repo_key(self):
        return (self.job.destination.api_host, self.job.destination.repository)

    def result(self):
        return ImageResult(str(self.job.source), str(self.job.destination),
                           self.status, self.digest, self.bytes_moved, self.error)


class _Tracker(object):
    """Counts outstanding tasks so the run can wait for work that spawns
    work; after a cancel it runs nothing more."""

    def __init__(self, cancel):
        self.cond = threading.Condition()
        self.outstanding = 0
        self.cancel = cancel
        self.deadline = None  # GRACE after the cancel was first seen

    def submit(self, pool, fn, *args):
        if self.cancel.is_set():
            return None
        with self.cond:
            self.outstanding += 1
        try:
            return pool.submit(self._wrap, fn, *args)
        except RuntimeError:  # the pool is shut down: the run was cancelled
            self.done()
            return None

    def _wrap(self, fn, *args):
        try:
            if not self.cancel.is_set():
                fn(*args)
        except Exception:  # a bug in a task must not hang the run
            LOG.exception("copy task failed unexpectedly")
        finally:
            self.done()

    def done(self):
        with self.cond:
            self.outstanding -= 1
            self.cond.notify_all()

    def wait(self, on_tick=None):
        """Until no task is left, or GRACE after a cancel; ``on_tick()``
        runs about every _TICK meanwhile (outside the lock)."""
        with self.cond:
            while self.outstanding:
                if self.cancel.is_set():
                    now = time.monotonic()
                    self.deadline = self.deadline or now + GRACE
                    if now >= self.deadline:
                        return
                self.cond.wait(_TICK)
                if on_tick is not None and self.outstanding and not self.cancel.is_set():
                    self.cond.release()
                    try:
                        on_tick()
                    finally:
                        self.cond.acquire()


class _Gate(object):
    """A semaphore whose limit can be raised while tasks wait on it."""

    def __init__(self, limit, cancel):
        self.cond = threading.Condition()
        self.limit = limit
        self.active = 0
        self.waiting = 0
        self.cancel = cancel

    def enter(self):
        """False if the run was cancelled while waiting."""
        with self.cond:
            self.waiting += 1
            try:
                while self.active >= self.limit:
                    if self.cancel.is_set():
                        return False
                    self.cond.wait(_TICK)
                self.active += 1
                return True
            finally:
                self.waiting -= 1

    def leave(self):
        with self.cond:
            self.active -= 1
            self.cond.notify()

    def widen(self, limit):
        with self.cond:
            self.limit = limit
            self.cond.notify_all()


class Tuner(object):
    """The upload limit from the bytes moved: ``sample(moved, waiting, now)``
    every call; every ``period`` it raises the limit by ``step`` (up to
    ``cap``) if uploads are waiting and the rate since the last raise grew
    by ``growth`` or more, and stops raising for good the first time it
    did not.  Returns the limit to use."""

    def __init__(self, start, step, cap, period=TUNE_PERIOD, growth=GROWTH):
        self.limit = start
        self.step = step
        self.cap = cap
        self.period = period
        self.growth = growth
        self.rate = None
        self.mark = None
        self.done = start >= cap

    def sample(self, moved, waiting, now):
        if self.done:
            return self.limit
        if self.mark is None:
            self.mark = (now, moved)
            return self.limit
        then, before = self.mark
        if now - then < self.period:
            return self.limit
        rate = (moved - before) / (now - then)
        self.mark = (now, moved)
        if not waiting:
            return self.limit
        if self.rate is not None and rate < self.rate * self.growth:
            self.done = True
            return self.limit
        self.rate = rate
        self.limit = min(self.cap, self.limit + self.step)
        self.done = self.limit >= self.cap
        return self.limit

    def finish(self, limit):
        """Raise the limit to ``limit`` (up to ``cap``) and stop tuning."""
        self.limit = max(self.limit, min(self.cap, limit))
        self.done = True
        return self.limit


def last_wave(queued, active, limit):
    """The upload limit that starts the last wave now, or None.  When what
    still waits at the gate is at most one wave, it is started at once: it
    then shares the link with the transfers in flight and ends with them,
    instead of its last blob streaming alone after every other one has
    ended (a far source caps each connection, so one stream is a fraction
    of the link).  At most doubles what is in flight, once (Tuner.finish)."""
    if 0 < queued <= limit and active + queued > limit:
        return active + queued
    return None


def concurrency(jobs):
    """Threads of one run that may talk to the same registry at once."""
    from tripleo_containers.registry import ranged
    return READ_JOBS + META_JOBS + max(jobs, MAX_UPLOAD_JOBS) + ranged.BUDGET


class Engine(object):
    """Copies images; settings only. Each ``run`` gets its own ``_Run``.

    ``backoff`` (default: the client transport's) is the one retry schedule;
    ``upload_attempts`` bounds whole-blob uploads. ``cancel()`` (or setting
    the transport's cancel event, e.g. from a signal handler) ends a run:
    nothing new starts, in-flight work is abandoned within about GRACE
    seconds, and the upload sessions it had opened are deleted.
    ``source`` (a Source) replaces the registries jobs are read from.
    """

    def __init__(self, client, jobs=4, meta_jobs=META_JOBS, upload_attempts=3,
                 progress=None, backoff=None, source=None):
        self.client = client
        self.source = source  # None: each job's source is a registry
        self.jobs = max(1, int(jobs))
        self.meta_jobs = max(1, int(meta_jobs))
        self.upload_attempts = max(1, int(upload_attempts))
        self.progress = progress or Progress()
        self.backoff = backoff or client.transport.backoff

    def cancel(self):
        self.backoff.cancel.set()

    def run(self, jobs, dry_run=False, verify=False):
        """Copy ``jobs`` (CopyJob list); returns ([ImageResult], Plan).
        Images a cancelled run did not finish have status INTERRUPTED.

        ``verify``: an image whose destination manifest has the source
        digest is not taken as complete: every blob is checked (HEAD) in
        its destination repository and what is missing is copied again
        (status REPAIRED; WOULD_REPAIR in a dry run).
        """
        return _Run(self, [_Image(i, job) for i, job in enumerate(jobs)],
                    dry_run, verify).execute()


class _Run(object):
    """The state of one run: images, pools, the plan's blob owners, the
    upload sessions open at the destination, and the cancel event every
    worker and every streamed chunk checks."""

    def __init__(self, engine, images, dry_run, verify=False):
        self.verify = verify
        self.engine = engine
        self.client = engine.client
        self.source = engine.source
        # digest -> size, learnt from the destination (HEAD) or the source's
        # read, when the source does not know sizes up front
        self.sizes = {}
        self.progress = engine.progress
        self.backoff = engine.backoff
        self.cancel = engine.backoff.cancel
        self.images = images
        self.dry_run = dry_run
        self.lock = threading.Lock()
        self.tracker = _Tracker(self.cancel)
        self.owner = {}      # ((host, repo), digest) -> image credited with its bytes
        self.by_repo = collections.defaultdict(list)  # (host, repo) -> images
        self.small = []      # small uploads held until the first big one is in
        self.sessions = {}   # upload URL -> destination Reference, opened, unfinished
        self.source_reads = {}  # (kind, source reference) -> Future: read once
        self.meta = self.upload = None
        self.gate = _Gate(engine.jobs, self.cancel)
        self.tuner = Tuner(engine.jobs, engine.jobs, max(engine.jobs, MAX_UPLOAD_JOBS))
        self.moved = 0
        self.queued = 0      # uploads submitted and not yet through the gate
        self.early = {}      # (host, digest) -> Future of an upload started with the plan
        self.small_until = None

    def execute(self):
        images = self.images
        plan = Plan(images=len(images))
        engine = self.engine
        self.meta = futures.ThreadPoolExecutor(engine.meta_jobs, "meta")
        self.upload = futures.ThreadPoolExecutor(self.tuner.cap, "upload")
        self.reads = futures.ThreadPoolExecutor(max(1, min(len(images), READ_JOBS)), "read")
        try:
            self._execute(plan)
        finally:
            self._close_pools()
        for image in images:
            if image.status is None:
                if not self.cancel.is_set():  # pragma: no cover - defensive
                    self._fail(image, RuntimeError("internal error: image never completed"))
                    continue
                image.status = INTERRUPTED
                image.error = "interrupted"
        plan.images_failed = sum(1 for im in images if im.status == FAILED)
        return [im.result() for im in images], plan

    def _execute(self, plan):
        images, dry_run = self.images, self.dry_run
        if self.source is None:
            # Each read looks at its destination first, then at its source:
            # the source connections (one per read, one for the ping) open
            # meanwhile.
            sources = collections.Counter(im.job.source.api_host for im in images)
            for host, count in sources.items():
                self.client.warm(host, min(count, READ_JOBS) + 1)
        reads = [self.reads.submit(self._read, image) for image in images]
        for image, fut in zip(images, reads):
            try:
                self._result(fut)
            except Exception as exc:
                self._fail(image, exc)
        for image in images:
            if image.status == PRESENT:
                self._report(image)
        if self.cancel.is_set():
            return
        work = [im for im in images if im.status is None]
        for image in work:
            self.by_repo[image.repo_key].append(image)
        blobs = self._plan(work, plan)
        for image in work:
            if image.verifying and image.status is None and not image.pending:
                image.status = PRESENT  # every blob checked: nothing to do
                self._report(image)
        plan.images_present = sum(1 for im in images if im.status == PRESENT)
        if self.cancel.is_set():
            return
        self.progress.planned(plan)
        if dry_run:
            for image in work:
                if image.status is None:
                    image.status = WOULD_REPAIR if image.verifying else WOULD_COPY
        else:
            self._transfer(work, blobs)

    def _result(self, fut):
        """``fut.result()``, in slices so that a cancel is seen at once."""
        while True:
            if self.cancel.is_set():
                raise errors.Cancelled("cancelled")
            try:
                return fut.result(_TICK)
            except futures.TimeoutError:
                continue

    def _close_pools(self):
        cancelled = self.cancel.is_set()
        self.reads.shutdown(wait=not cancelled, cancel_futures=True)
        if cancelled:
            self.tracker.wait()
        # After a cancel, workers still blocked (in a socket read that has
        # not timed out yet) are left behind; what they opened at the
        # destination is not.
        self.meta.shutdown(wait=not cancelled, cancel_futures=cancelled)
        self.upload.shutdown(wait=not cancelled, cancel_futures=cancelled)
        with self.lock:
            sessions, self.sessions = dict(self.sessions), {}
        if sessions:
            cleaner = threading.Thread(target=self._cancel_sessions, args=(sessions,),
                                       name="cancel-uploads", daemon=True)
            cleaner.start()
            cleaner.join(GRACE)

    def _cancel_sessions(self, sessions):
        for location, dst in sessions.items():
            self.client.cancel_upload(dst, location)

    # -- phase 1: manifests --------------------------------------------------

    def _read(self, image):
        job = image.job
        client = self.client
        if self.source is not None:
            # the manifest is written once the sizes are known (_push)
            image.blobs = dict(self.source.blobs(job))
            return
        # The destination first: on a first run it has nothing, and the
        # source manifest is then fetched with one GET (no HEAD before it).
        # When it has the tag, a HEAD at the source (which registries such
        # as Docker Hub do not count as a pull) decides whether to copy.
        dst = client.head_manifest(job.destination, push=not self.dry_run)
        ref = job.source
        if dst is not None and dst.digest:
            src = self._once("head", job.source, client.head_manifest)
            if src is None:
                raise _not_found(job)
            if src.digest == dst.digest and not self.verify:
                image.digest = src.digest
                image.status = PRESENT
                return
            if src.digest:
                ref = job.source.with_digest(src.digest)
        try:
            top = self._once("get", ref, client.get_manifest)
        except errors.NotFound:
            raise _not_found(job)
        image.digest = top.digest
        if dst is not None and dst.digest == top.digest:
            if not self.verify:
                image.status = PRESENT
                return
            image.verifying = True
        children = []
        for child in top.children:
            manifest = self._once("get", job.source.with_digest(child.digest),
                                  client.get_manifest)
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

    def _once(self, kind, ref, read):
        """``read(ref)`` done once per run for every image that needs it:
        one image sent to several destinations is read once at the source."""
        key = (kind, str(ref))
        with self.lock:
            cell = self.source_reads.get(key)
            mine = cell is None
            if mine:
                cell = self.source_reads[key] = futures.Future()
        if mine:
            try:
                cell.set_result(read(ref))
            except BaseException as exc:
                cell.set_exception(exc)
        return self._result(cell)

    def _fail(self, image, exc):
        if isinstance(exc, errors.Cancelled) or self.cancel.is_set():
            # INTERRUPTED at the end of the run: after a cancel, errors are
            # mostly its own doing (connections cut short)
            return False
        with self.lock:
            if image.status in (FAILED, COPIED, PRESENT):
                return False
            image.status = FAILED
            image.error = _error_text(exc)
        self._report(image)
        return True

    def _report(self, image):
        self.progress.image_done(image.result())

    # -- phase 2: plan ------------------------------------------------------

    def _plan(self, work, plan):
        """BlobEntry per (destination registry, digest)."""
        dry_run = self.dry_run
        # --verify needs the truth for every pair, like a dry run's plan;
        # so does a source that writes its manifest after the plan: a no-op
        # re-run must not mount what is there (and learns every size)
        exact = dry_run or self.verify or self.source is not None
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
        early = () if exact else self._early_keys(pairs)
        for key in early:
            heads[key] = self._start_early(key, pairs[key][0])
        for key in pairs:
            host, repo, digest = key
            if key in heads:
                checked.add((host, digest))
                continue
            if not exact and (host, digest) in checked:
                heads[key] = None
                continue
            checked.add((host, digest))
            dst = pairs[key][0].job.destination
            look = self._blob_size if pairs[key][0].blobs[digest] is None else \
                self.client.blob_exists
            heads[key] = self.meta.submit(look, _repo(dst, repo), digest, not dry_run)
        blobs = collections.OrderedDict()
        for key, fut in heads.items():
            host, repo, digest = key
            try:
                present = fut is not None and self._result(fut)
            except Exception as exc:
                for image in pairs[key]:
                    self._fail(image, exc)
                continue
            entry = blobs.get((host, digest))
            if entry is None:
                first = pairs[key][0]
                entry = blobs[(host, digest)] = BlobEntry(
                    first.job.destination, digest, first.blobs[digest])
            for image in pairs[key]:
                src = image.job.source
                if all(s.name != src.name for s in entry.sources):
                    entry.sources.append(src)
            if present and entry.size is None and present is not True:
                entry.size = present
                with self.lock:
                    self.sizes[digest] = present
            (entry.present if present else entry.missing).append(repo)
            if present:
                plan.blobs_present += 1
            else:
                for image in pairs[key]:
                    image.pending.add(digest)
        plan.unique_blobs = len(blobs)
        owner = self.owner
        for image in work:
            for digest in image.pending:
                owner.setdefault((image.repo_key, digest), image)
        for (host, digest), entry in blobs.items():
            missing = entry.missing
            if not missing:
                continue
            if entry.present:
                plan.mounts += len(missing)
            else:
                plan.uploads += 1
                plan.bytes_to_move += entry.size or 0
                plan.unsized += entry.size is None
                plan.mounts += len(missing) - 1
                target = owner.get(((host, missing[0]), digest))
                if dry_run and target is not None:
                    target.bytes_moved += entry.size or 0
        return blobs

    def _early_keys(self, pairs):
        """The pairs whose upload starts with the plan (see _start_early):
        the ``jobs`` biggest blobs, each the first pair of its digest, above
        SMALL_BLOB, known size, one destination registry."""
        hosts = collections.defaultdict(set)
        first = collections.OrderedDict()
        for key, images in pairs.items():
            host, repo, digest = key
            hosts[digest].add(host)
            first.setdefault((host, digest), (key, images[0].blobs[digest]))
        sized = [(size, key) for key, size in first.values()
                 if size is not None and size > SMALL_BLOB and len(hosts[key[2]]) == 1]
        sized.sort(key=lambda item: -item[0])
        return [key for _, key in sized[:self.engine.jobs]]

    def _start_early(self, key, image):
        """Start the upload of a big blob while the rest of the plan is
        made (on a far source the link would otherwise idle through every
        destination HEAD of the plan): HEAD it in its first repository, and
        if it is missing there, upload it.  Returns the Future of the HEAD,
        which the plan reads as any other; the upload's own Future is kept
        in ``self.early`` for _transfer, which does the bookkeeping (mounts,
        pending images) once the plan is made."""
        host, repo, digest = key
        head, done = futures.Future(), futures.Future()
        self.early[(host, digest)] = done
        dst = _repo(image.job.destination, repo)
        size = image.blobs[digest]
        sources = [image.job.source]

        def run():
            try:
                present = self.client.blob_exists(dst, digest, True)
            except BaseException as exc:
                head.set_exception(exc)
                done.set_exception(exc)
                return
            head.set_result(present)
            if present:
                done.set_result(None)
                return
            try:
                done.set_result(self._copy_blob(sources, dst, digest, size))
            except BaseException as exc:
                done.set_exception(exc)
        self._submit_upload(run)
        return head

    def _finish_early(self, entry, done):
        """The bookkeeping of an upload started with the plan, once it is
        over; if it failed, the ordinary upload (with its retries) takes over."""
        exc = done.exception()
        if exc is None:
            try:
                self._landed(entry, entry.missing[0], entry.missing[1:], done.result())
            finally:
                self._release_small()
        elif not isinstance(exc, errors.Cancelled) and not self.cancel.is_set():
            LOG.debug("upload of %s started with the plan failed: %s",
                      entry.digest, _error_text(exc))
            self._submit_upload(self._upload_then_release, entry)

    def _blob_size(self, repo, digest, push):
        """A blob's size at the destination (HEAD), else False."""
        return self.client.blob_size(repo, digest, push) or False

    # -- phase 3: transfer --------------------------------------------------

    def _transfer(self, work, blobs):
        tracker = self.tracker
        for image in work:
            if image.status is None and not image.pending:
                self._push_when_ready(image)
        uploads = []
        started = []
        for entry in blobs.values():
            if not entry.missing:
                continue
            done = self.early.get((entry.registry.api_host, entry.digest))
            if done is not None and not entry.present:
                started.append((entry, done))
                continue
            if entry.present:
                frm = _repo(entry.registry, entry.present[0])
                for repo in entry.missing:
                    tracker.submit(self.meta, self._mount, entry, repo, frm)
            else:
                uploads.append(entry)
        # Biggest first: the long transfers start at once and the small ones
        # fill the gaps at the end instead of one big blob finishing last.
        # (Unknown sizes first: a source that cannot say is a daemon's
        # uncompressed layers, the big ones.)
        uploads.sort(key=lambda e: (e.size is not None, -(e.size or 0)))
        uploads = self._lead_and_follow(uploads)
        if self.source is not None:
            for entry in uploads:
                self.source.expect(entry.sources[0], [entry.digest])
        # Small blobs (configs, thin layers) cost latency, not bandwidth:
        # queued behind the big layers on the upload pool they kept the
        # cores half idle at the end of a run, with every manifest waiting
        # for its config. They run on the metadata pool instead, released
        # when the first big upload is done so that the biggest blobs still
        # start (and land) first.
        jobs = self.engine.jobs
        self.small = [e for i, e in enumerate(uploads) if i >= jobs and _small(e.size)]
        big = [e for i, e in enumerate(uploads) if i < jobs or not _small(e.size)]
        self.small_until = time.monotonic() + SMALL_WAIT
        for entry, done in started:
            # in the upload's own thread when it ends (at once if it has):
            # no thread waits for it meanwhile
            done.add_done_callback(
                lambda fut, entry=entry: self.tracker.submit(
                    self.meta, self._finish_early, entry, fut))
        for entry in big:
            self._submit_upload(self._upload_then_release, entry)
        tracker.wait(self._tick)

    def _tick(self):
        now = time.monotonic()
        if self.small and now >= self.small_until:
            self._release_small()
        limit = self.tuner.sample(self.moved, self.gate.waiting, now)
        wave = last_wave(self.queued, self.gate.active, limit)
        if wave:
            limit = self.tuner.finish(wave)
        if limit != self.gate.limit:
            LOG.debug("uploads in flight: up to %d", limit)
            self.gate.widen(limit)

    def _moved(self, count):
        with self.lock:
            self.moved += count
        self.progress.bytes_moved(count)

    def _submit_upload(self, fn, *args):
        with self.lock:
            self.queued += 1
        self.tracker.submit(self.upload, self._gated, fn, *args)

    def _gated(self, fn, *args):
        entered = self.gate.enter()
        with self.lock:
            self.queued -= 1
        if not entered:
            return
        try:
            fn(*args)
        finally:
            self.gate.leave()

    def _release_small(self):
        with self.lock:
            small, self.small = self.small, []
        for other in small:
            self.tracker.submit(self.meta, self._upload_entry, other)

    @staticmethod
    def _lead_and_follow(uploads):
        """The first entry of each digest leads; the same blob for the other
        destination registries follows it (see _upload_entry)."""
        leaders = collections.OrderedDict()
        for entry in uploads:
            lead = leaders.setdefault(entry.digest, entry)
            if lead is not entry:
                lead.followers.append(entry)
        return list(leaders.values())

    def _upload_entry(self, entry):
        with self.lock:
            followers, entry.followers = entry.followers, []
        if followers:
            # One source read streamed into every destination at once.
            left = self._tee([entry] + followers)
            if not left:
                return
            if entry in left:
                # Nothing landed from the stream where the leader goes: it
                # retries on its own and the others follow it as below.
                entry.followers = [e for e in left if e is not entry]
            else:
                self._follow(entry, left)
                return
        try:
            self._upload(entry, entry.missing[0], None, entry.missing[1:])
        finally:
            with self.lock:
                followers, entry.followers = entry.followers, []
            self._follow(entry, followers)

    def _follow(self, entry, followers):
        for other in followers:
            if entry.landed_in is not None:
                # Read it back from the registry that has it: near, and
                # the source is read once whatever the number of sites.
                # The source stays the fallback of a retry.
                other.sources = [_repo(entry.registry, entry.landed_in)] + other.sources
            if _small(other.size):
                self.tracker.submit(self.meta, self._upload_entry, other)
            else:
                self._submit_upload(self._upload_entry, other)

    def _tee(self, entries):
        """Stream one source read of a blob into the first repository of
        every entry (the same blob on several destination registries);
        returns the entries it did not land."""
        if self.source is not None:
            # one read per destination: the first from the source, the
            # others from the registry it landed in (_follow)
            return entries
        client, left, live, targets = self.client, [], [], []
        for entry in entries:
            dst = _repo(entry.registry, entry.missing[0])
            if not self._wanted(dst, entry.digest, entry.missing[1:]):
                continue
            try:
                location = client.start_upload(dst)
            except Exception as exc:
                LOG.debug("upload session at %s refused: %s", dst.name, _error_text(exc))
                left.append(entry)
                continue
            self._opened(location, dst)
            live.append(entry)
            targets.append((dst, location))
        if not targets:
            return left
        head = entries[0]
        results = client.tee_blob(head.sources[0], targets, head.digest, head.size,
                                  on_bytes=self._moved)
        for entry, (dst, location), sent in zip(live, targets, results):
            self._closed(location)
            if isinstance(sent, Exception):
                LOG.debug("tee of %s to %s failed: %s", entry.digest, dst.name,
                          _error_text(sent))
                client.cancel_upload(dst, location)
                left.append(entry)
            else:
                self._landed(entry, entry.missing[0], entry.missing[1:], sent)
        return left

    def _upload(self, entry, repo, location, then_mount):
        """Upload one blob into ``repo`` (whole-upload retries), then mount it
        into ``then_mount``. ``location`` is an upload session from a 202
        mount answer, used for the first attempt."""
        dst = _repo(entry.registry, repo)
        if not self._wanted(dst, entry.digest, then_mount):
            if location is not None:
                self._closed(location)
                self.client.cancel_upload(dst, location)
            return
        try:
            sent = self._copy_blob(entry.sources, dst, entry.digest, entry.size, location)
        except Exception as exc:
            if not isinstance(exc, errors.Cancelled):
                self._blob_failed(dst.api_host, entry.digest,
                                  [repo] + list(then_mount), exc)
            return
        self._landed(entry, repo, then_mount, sent)

    def _copy_blob(self, sources, dst, digest, size, location=None):
        """Put blob ``digest`` into ``dst`` from one of ``sources`` (a mount
        when a source is on the same registry), retrying temporary failures
        as a whole; returns the bytes sent. An upload session that did not
        complete is deleted, so that it does not hold space."""
        client = self.client
        if size is None:
            size = self.sizes.get(digest)
        attempt = 0
        while True:
            src = sources[attempt % len(sources)]
            own = self.source is not None and not isinstance(src, reference.Reference)
            try:
                if not own and attempt == 0 and location is None and \
                        src.api_host == dst.api_host:
                    mounted, location = client.mount_blob(dst, digest, src)
                    if mounted:
                        return 0
                if location is None:
                    location = client.start_upload(dst)
                self._opened(location, dst)
                if own:
                    body, size = self.source.open_blob(src, digest, self._moved, self.cancel)
                    with self.lock:  # known now, even if the PUT's answer is lost
                        self.sizes[digest] = size
                    client.push_blob(dst, digest, size, body, location)
                    self._closed(location)
                    return size
                # Retries read the blob as one stream: a source whose
                # ranges misbehave still gets the plain copy.
                sent = client.copy_blob(src, dst, digest, size, location=location,
                                        on_bytes=self._moved, ranged=attempt == 0)
                self._closed(location)
                return sent
            except Exception as exc:
                LOG.debug("upload of %s to %s failed: %s", digest, dst.name,
                          _error_text(exc))
                if self.cancel.is_set():
                    raise errors.Cancelled("cancelled")  # the run's end cleans up
                # A lost PUT response looks like a failure although the blob
                # landed; a retried PUT then gets BLOB_UPLOAD_UNKNOWN.
                try:
                    if client.blob_exists(dst, digest, True):
                        self._closed(location)
                        return self.sizes.get(digest, size) or 0
                except errors.RegistryError:
                    pass
                if location is not None:
                    self._closed(location)
                    client.cancel_upload(dst, location)
                    location = None
                if not self.backoff.should_retry(attempt, exc, self.engine.upload_attempts):
                    raise
                self.backoff.wait(attempt, exc)
                attempt += 1

    def _opened(self, location, dst):
        with self.lock:
            self.sessions[location] = dst

    def _closed(self, location):
        with self.lock:
            self.sessions.pop(location, None)

    def _upload_then_release(self, entry):
        try:
            self._upload_entry(entry)
        finally:
            self._release_small()

    def _wanted(self, dst, digest, then_mount):
        """False when every image needing this blob here already failed."""
        repos = [dst.repository] + list(then_mount)
        for repo in repos:
            for image in self.by_repo.get((dst.api_host, repo), ()):
                if digest in image.pending and image.status is None:
                    return True
        return False

    def _landed(self, entry, repo, then_mount, sent):
        host, digest = entry.registry.api_host, entry.digest
        if entry.landed_in is None:
            entry.landed_in = repo
        if entry.size is None and sent:
            entry.size = sent
            with self.lock:
                self.sizes.setdefault(digest, sent)
        owner = self.owner.get(((host, repo), digest))
        if owner is not None and sent:
            with self.lock:
                owner.bytes_moved += sent
        self._blob_in(host, repo, digest)
        frm = _repo(entry.registry, repo)
        for other in then_mount:
            self.tracker.submit(self.meta, self._mount, entry, other, frm)

    def _mount(self, entry, repo, frm):
        dst = _repo(entry.registry, repo)
        try:
            mounted, location = self.client.mount_blob(dst, entry.digest, frm)
        except Exception as exc:
            LOG.debug("mount of %s into %s failed: %s", entry.digest, dst.name, exc)
            mounted, location = False, None
        if mounted:
            self._blob_in(dst.api_host, repo, entry.digest)
            return
        # 202: the registry would not mount (e.g. no pull on `from`) and gave
        # an upload session instead; upload there under the upload limit.
        if location is not None:
            self._opened(location, dst)
        self._submit_upload(self._upload, entry, repo, location, [])

    def _blob_in(self, host, repo, digest):
        ready = []
        with self.lock:
            for image in self.by_repo.get((host, repo), ()):
                if digest in image.pending:
                    image.pending.discard(digest)
                    if not image.pending and image.status is None and not image.pushing:
                        image.pushing = True
                        ready.append(image)
        for image in ready:
            self.tracker.submit(self.meta, self._push, image)

    def _push_when_ready(self, image):
        image.pushing = True
        self.tracker.submit(self.meta, self._push, image)

    def _blob_failed(self, host, digest, repos, exc):
        LOG.debug("blob %s failed on %s: %s", digest, host, _error_text(exc))
        for repo in repos:
            for image in self.by_repo.get((host, repo), ()):
                if digest in image.pending:
                    self._fail(image, exc)

    def _push(self, image):
        dst = image.job.destination
        if self.source is not None and not image.manifests:
            try:
                if self._write_manifest(image):
                    return
            except Exception as exc:
                self._fail(image, exc)
                return
        attempt = 0
        while True:
            try:
                for manifest in image.manifests[:-1]:
                    self.client.put_manifest(dst.with_digest(manifest.digest), manifest)
                self.client.put_manifest(dst, image.manifests[-1])
                break
            except Exception as exc:
                # Another run writing the same blobs (or the registry's
                # cache) can make a blob we saw land look unknown to the
                # manifest PUT: check them all again, copy what is really
                # missing, then put the manifest again.
                if (getattr(exc, "code", None) not in _BLOB_UNKNOWN
                        or attempt + 1 >= PUSH_ATTEMPTS or self.cancel.is_set()):
                    self._fail(image, exc)
                    return
                LOG.debug("%s: %s; checking its blobs", dst, exc)
                try:
                    self._repair(image)
                except Exception as exc:
                    self._fail(image, exc)
                    return
                attempt += 1
        with self.lock:
            if image.status is not None:
                return
            image.status = REPAIRED if image.verifying else COPIED
        self._report(image)

    def _write_manifest(self, image):
        """A source's manifest, now that its blobs are in: True when the
        destination has that very manifest already (then the image is done)."""
        with self.lock:
            sizes = {d: self.sizes.get(d, size) for d, size in image.blobs.items()}
        manifest = self.source.manifest(image.job, sizes)
        image.digest = manifest.digest
        present = self.client.head_manifest(image.job.destination, push=True)
        if present is not None and present.digest == manifest.digest:
            with self.lock:
                if image.status is not None:
                    return True
                image.status = PRESENT
            self._report(image)
            return True
        image.manifests = [manifest]
        return False

    def _repair(self, image):
        dst = _repo(image.job.destination, image.job.destination.repository)
        for digest, size in image.blobs.items():
            if not self.client.blob_exists(dst, digest, True):
                sent = self._copy_blob([image.job.source], dst, digest, size)
                with self.lock:
                    image.bytes_moved += sent


def _small(size):
    return size is not None and size <= SMALL_BLOB


def _not_found(job):
    return errors.NotFound("image %s not found (no such repository or tag at %s)"
                           % (job.source, job.source.registry))


def _repo(registry_ref, repository):
    """A Reference for ``repository`` on the registry of ``registry_ref``."""
    return reference.Reference(registry_ref.registry, repository)
