"""The upload's progress: a one-line bar on a terminal, log lines otherwise.

Standard library only: `openstack` imports every command module (and so
this one, through image_upload) on each run.
"""
import threading
import time

MIB = 1024.0 * 1024.0


class Progress(object):
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
            if result.status == "failed":
                self._line("failed: %s -> %s: %s" % (
                    result.source, result.destination, result.error))
            elif not self.tty:
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
