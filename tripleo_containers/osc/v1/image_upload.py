"""openstack overcloud container image upload."""
import logging
import os
import signal
import sys
import threading
import time

from osc_lib import exceptions as osc_exc
from osc_lib.command import command

from tripleo_containers.osc.v1 import common

LOG = logging.getLogger(__name__)
MIB = 1024.0 * 1024.0


class _Progress(object):
    """Engine progress -> a one-line bar on a terminal, log lines otherwise.

    Duck-typed against tripleo_containers.copy.engine.Progress so this module
    does not import the library at start-up.
    """

    def __init__(self, stream, tty):
        self.stream = stream
        self.tty = tty
        self.lock = threading.Lock()
        self.total_images = 0
        self.done_images = 0
        self.total_bytes = 0
        self.moved = 0
        self.last_draw = 0.0
        self.started = time.monotonic()

    def starting(self, images):
        with self.lock:
            self.total_images = images

    def planned(self, plan):
        with self.lock:
            self.total_images = max(self.total_images, plan.images)
            self.total_bytes = plan.bytes_to_move
            if not self.tty:
                self._line("plan: %d images (%d already present), %d unique blobs, "
                           "%.1f MiB to upload, %d blobs already there, %d mounts" % (
                               plan.images, plan.images_present, plan.unique_blobs,
                               plan.bytes_to_move / MIB, plan.blobs_present, plan.mounts))
            self._draw(force=True)

    def bytes_moved(self, count):
        with self.lock:
            self.moved += count
            self._draw()

    def image_done(self, result):
        with self.lock:
            self.done_images += 1
            # why an image failed is said once per reason, after the run
            if not self.tty:
                self._line("[%d/%d] %s: %s (%.1f MiB)" % (
                    self.done_images, max(self.total_images, self.done_images),
                    result.status, result.destination, result.bytes_moved / MIB))
            self._draw(force=True)

    def finish(self):
        with self.lock:
            if self.tty:
                self.stream.write("\r\033[K")
                self.stream.flush()

    def _line(self, text):
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def _draw(self, force=False):
        now = time.monotonic()
        if not self.tty or (not force and now - self.last_draw < 0.2):
            return
        self.last_draw = now
        frac = self.moved / float(self.total_bytes) if self.total_bytes else (
            self.done_images / float(self.total_images or 1))
        width = 30
        full = int(min(frac, 1.0) * width)
        self.stream.write("\r[%s%s] %d/%d images  %.1f/%.1f MiB  %.0fs" % (
            "#" * full, "." * (width - full), self.done_images, self.total_images,
            self.moved / MIB, self.total_bytes / MIB, now - self.started))
        self.stream.flush()


class Upload(command.Lister):
    """Copy the images of an images file to their push destinations."""

    auth_required = False
    log = LOG

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--config-file", dest="config_files", metavar="<yaml file>",
            action="append", required=True,
            help="Images file (from 'container image prepare'); repeat to "
                 "add files, later entries override earlier ones by imagename.")
        parser.add_argument(
            "--jobs", type=int, default=4, metavar="<n>",
            help="Concurrent blob uploads (default 4; the destination's write "
                 "speed is the limit, 2-4 saturate a local registry).")
        parser.add_argument(
            "--dry-run", action="store_true",
            help="Show the transfer plan (images, unique blobs, bytes to move, "
                 "blobs already present, mounts) without writing anything.")
        parser.add_argument(
            "--source-daemon", nargs="?", const="", metavar="<DOCKER_HOST>",
            help="Read the images from a local Docker daemon (e.g. built by "
                 "'image build') instead of their source registry: the daemon "
                 "image is the entry's imagename; default $DOCKER_HOST.")
        common.add_registry_options(parser)
        parser.add_argument(
            "--timeout", type=float, default=None, metavar="<seconds>",
            help="Give up on a registry connection that sends nothing for "
                 "this long (default 60; each request is retried 4 times). "
                 "A blob or manifest transfer stalls, and its image fails "
                 "without a retry, when no byte arrives for this long or "
                 "under 1 KiB/s arrives averaged over this long: within "
                 "twice this long. Ctrl-C (or SIGTERM) stops the copy within "
                 "about 2 s and cancels its unfinished uploads at the "
                 "destination; run the same command again to finish.")
        return parser

    def take_action(self, parsed_args):
        if parsed_args.jobs < 1:
            raise osc_exc.CommandError("--jobs must be at least 1")
        if parsed_args.timeout is not None and not 0 < parsed_args.timeout <= 3600:
            raise osc_exc.CommandError("--timeout must be between 0 and 3600 seconds")
        stream = getattr(self.app, "stderr", None) or sys.stderr
        progress = _Progress(stream, _isatty(stream))
        try:
            if parsed_args.source_daemon is not None:
                results = self._from_daemon(parsed_args, progress)
            else:
                from tripleo_containers.copy import upload
                cancel = threading.Event()
                with _Interruptible(cancel):
                    results, _ = common.run(
                        upload.upload, parsed_args.config_files, jobs=parsed_args.jobs,
                        dry_run=parsed_args.dry_run, progress=progress,
                        timeout=parsed_args.timeout, cancel=cancel,
                        **common.registry_kwargs(parsed_args))
                if cancel.is_set():
                    progress.finish()
                    _say_failures(progress, results)
                    _interrupted(stream, results)
        finally:
            progress.finish()
        _say_failures(progress, results)
        if parsed_args.dry_run:
            progress._line("dry run: nothing written")
        failed = [r for r in results if r.status == "failed"]
        self._failure = None
        if failed:
            self._failure = "%d of %d images failed to copy" % (len(failed), len(results))
        columns = ("Image", "Destination", "Result", "Digest", "Bytes moved")
        rows = [(r.source, r.destination, r.status, r.digest or "", r.bytes_moved)
                for r in results]
        return columns, rows

    @staticmethod
    def _from_daemon(parsed_args, progress):
        # No plan phase: the daemon gives layer digests only per image.
        if parsed_args.dry_run:
            raise osc_exc.CommandError(
                "--dry-run plans registry-to-registry copies only; it cannot be "
                "combined with --source-daemon")
        from tripleo_containers.build import daemon
        return common.run(
            daemon.upload, parsed_args.config_files,
            daemon_url=parsed_args.source_daemon or None, on_result=progress.image_done,
            timeout=parsed_args.timeout, **common.registry_kwargs(parsed_args))

    def run(self, parsed_args):
        self._failure = None
        status = super().run(parsed_args)
        if self._failure:
            raise osc_exc.CommandError(self._failure)
        return status


class _Interruptible(object):
    """SIGINT/SIGTERM set ``cancel`` (the copy then winds down in about 2 s
    and cancels its upload sessions); a second signal exits at once."""

    def __init__(self, cancel):
        self.cancel = cancel
        self.saved = {}

    def _handle(self, signum, frame):
        if self.cancel.is_set():
            os._exit(130)
        self.cancel.set()

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self.saved[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: no signals to take
                pass
        return self

    def __exit__(self, *exc):
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)


def _say_failures(progress, results):
    """Why images failed, once per reason (copy/report.py)."""
    from tripleo_containers.copy import report
    for line in report.failure_lines(results):
        progress._line(line)


def _interrupted(stream, results):
    done = sum(1 for r in results if r.status in ("copied", "already present"))
    stream.write("interrupted: %d of %d images copied; run the same command again "
                 "to finish\n" % (done, len(results)))
    stream.flush()
    if any(t.is_alive() and not t.daemon and t is not threading.main_thread()
           for t in threading.enumerate()):
        # A worker still blocked in a socket read would hold the interpreter's
        # exit until its timeout: what it had open was cancelled already.
        logging.shutdown()
        sys.stdout.flush()
        os._exit(130)
    raise KeyboardInterrupt()  # cliff: exit status 130, no traceback


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
