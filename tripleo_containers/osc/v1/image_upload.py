"""openstack overcloud container image upload."""
import logging
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
                 "this long (default 60; each request is retried 4 times).")
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
                results, _ = common.run(
                    upload.upload, parsed_args.config_files, jobs=parsed_args.jobs,
                    dry_run=parsed_args.dry_run, progress=progress,
                    timeout=parsed_args.timeout, **common.registry_kwargs(parsed_args))
        finally:
            progress.finish()
        from tripleo_containers.copy import report
        for line in report.failure_lines(results):
            progress._line(line)
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


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
