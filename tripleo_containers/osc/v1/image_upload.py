"""openstack overcloud container image upload."""
import logging
import os
import signal
import sys
import threading

from osc_lib import exceptions as osc_exc
from osc_lib.command import command

from tripleo_containers.osc.v1 import common
from tripleo_containers.osc.v1 import progressbar

LOG = logging.getLogger(__name__)


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
                 "add files. Each imagename goes to each push_destination it "
                 "is listed with; a later entry with the same imagename and "
                 "push_destination replaces the earlier one.")
        parser.add_argument(
            "--push-destination", dest="destinations", metavar="<host:port>",
            action="append", default=[],
            help="Send every image to this registry instead of the entries' "
                 "own push_destination; repeat to send each image to several "
                 "registries (each unique blob is still read once from its "
                 "source).")
        parser.add_argument(
            "--jobs", type=int, default=4, metavar="<n>",
            help="Concurrent blob uploads to start with (default 4; the "
                 "destination's write speed is the limit, 2-4 saturate a local "
                 "registry). More start, in steps of this many and up to 32, "
                 "while that raises the throughput (a far source).")
        parser.add_argument(
            "--dry-run", action="store_true",
            help="Show the transfer plan (images, unique blobs, bytes to move, "
                 "blobs already present, mounts) without writing anything.")
        parser.add_argument(
            # not --verify: openstackclient's global --verify (TLS) takes it
            "--verify-blobs", dest="verify", action="store_true",
            help="Check every blob of every destination image, even one whose "
                 "manifest already matches the source (one HEAD per blob), and "
                 "copy again what is missing; with --dry-run, report it. Use it "
                 "when a destination image will not pull ('blob unknown') or "
                 "its storage was damaged, cleaned or restored."),
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
        # the daemon path has no plan phase: nothing to hold its lines for
        progress = progressbar.Progress(stream, common.isatty(stream),
                                        plan_first=parsed_args.source_daemon is None)
        try:
            cancel = threading.Event()
            with _Interruptible(cancel):
                if parsed_args.source_daemon is not None:
                    results = self._from_daemon(parsed_args, progress, cancel)
                else:
                    from tripleo_containers.copy import upload
                    results, _ = common.run(
                        upload.upload, parsed_args.config_files, jobs=parsed_args.jobs,
                        dry_run=parsed_args.dry_run, progress=progress,
                        timeout=parsed_args.timeout, cancel=cancel,
                        verify=parsed_args.verify, destinations=parsed_args.destinations,
                        **common.registry_kwargs(parsed_args))
            if cancel.is_set():
                progress.finish()
                _say_failures(progress, results)
                _interrupted(stream, results)
        finally:
            progress.finish()
        _say_failures(progress, results)
        if parsed_args.dry_run:
            progress.note("dry run: nothing written")
        else:
            progress.totals(results)
        failed = [r for r in results if r.status == "failed"]
        if failed:
            self._failure = "%d of %d images failed to copy" % (len(failed), len(results))
        columns = ("Image", "Destination", "Result", "Digest", "Bytes moved")
        rows = [(r.source, r.destination, r.status, r.digest or "", r.bytes_moved)
                for r in results]
        return columns, rows

    @staticmethod
    def _from_daemon(parsed_args, progress, cancel):
        if parsed_args.dry_run or parsed_args.verify:
            raise osc_exc.CommandError(
                "--dry-run and --verify-blobs work on registry-to-registry "
                "copies only; they cannot be combined with --source-daemon")
        from tripleo_containers.build import daemon
        return common.run(
            daemon.upload, parsed_args.config_files,
            daemon_url=parsed_args.source_daemon or None, progress=progress,
            timeout=parsed_args.timeout, destinations=parsed_args.destinations,
            jobs=parsed_args.jobs, cancel=cancel, **common.registry_kwargs(parsed_args))

    def run(self, parsed_args):
        # cliff prints the rows after take_action returns: the batch's
        # failure is raised only then, so the table still shows every image
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
        progress.note(line)


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
