"""The upload's progress: a one-line bar on a terminal, log lines otherwise.

Standard library only: `openstack` imports every command module (and so
this one, through image_upload) on each run.
"""
import threading
import time

UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def size(count):
    """Bytes in the largest binary unit that keeps a digit before the point:
    512 B, 3.4 KiB, 12.0 MiB (a small image is not "0.0 MiB")."""
    value = float(count)
    for unit in UNITS[:-1]:
        if abs(value) < 1024:
            break
        value /= 1024
    else:
        unit = UNITS[-1]
    return "%d B" % count if unit == "B" else "%.1f %s" % (value, unit)


class Progress(object):
    """Engine progress -> a one-line bar on a terminal, log lines otherwise.

    Duck-typed against tripleo_containers.copy.engine.Progress so this module
    does not import the library at start-up. With ``plan_first`` the lines of
    images settled before the plan (already present, unreadable) are held
    until the plan line, so a re-run or a dry run reads plan first.
    """

    def __init__(self, stream, tty, plan_first=True):
        self.stream = stream
        self.tty = tty
        self.lock = threading.Lock()
        self.total_images = 0
        self.done_images = 0
        self.total_bytes = 0
        self.moved = 0
        self.last_draw = 0.0
        self.started = time.monotonic()
        self.held = [] if plan_first else None

    def starting(self, images):
        with self.lock:
            self.total_images = images

    def planned(self, plan):
        with self.lock:
            self.total_images = max(self.total_images, plan.images)
            unsized = getattr(plan, "unsized", 0)
            # unknown sizes: the bar counts images, not bytes
            self.total_bytes = 0 if unsized else plan.bytes_to_move
            held, self.held = self.held or [], None
            if not self.tty:
                upload = size(plan.bytes_to_move)
                if unsized:
                    upload = "%d blobs (%s known)" % (plan.uploads, upload)
                self._line("plan: %d images (%d already present), %d unique blobs, "
                           "%s to upload, %d blobs already there, %d mounts" % (
                               plan.images, plan.images_present, plan.unique_blobs,
                               upload, plan.blobs_present, plan.mounts))
            for text in held:
                self._line(text)
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
                self._say("[%d/%d] %s: %s (%s)" % (
                    self.done_images, max(self.total_images, self.done_images),
                    result.status, result.destination, size(result.bytes_moved)))
            self._draw(force=True)

    def note(self, text):
        """A line of the command's own, after what the engine reported."""
        with self.lock:
            self._flush_held()
            self._line(text)

    def totals(self, results):
        """The one closing line: images by outcome, bytes moved, time, rate."""
        seconds = time.monotonic() - self.started
        count = {}
        for r in results:
            count[r.status] = count.get(r.status, 0) + 1
        moved = sum(r.bytes_moved or 0 for r in results)
        repaired = (", %d repaired" % count["repaired"]) if count.get("repaired") else ""
        self.note("total: %d copied, %d already present%s, %d failed; %s moved in %.1f s "
                  "(%s/s)" % (count.get("copied", 0), count.get("already present", 0),
                              repaired, count.get("failed", 0), size(moved), seconds,
                              size(moved / seconds if seconds > 0 else 0)))

    def finish(self):
        with self.lock:
            self._flush_held()
            if self.tty:
                self.stream.write("\r\033[K")
                self.stream.flush()

    def _say(self, text):
        if self.held is not None:
            self.held.append(text)
        else:
            self._line(text)

    def _flush_held(self):
        # the engine stopped before a plan (an error): say what it reported
        held, self.held = self.held or [], None
        for text in held:
            self._line(text)

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
        self.stream.write("\r[%s%s] %d/%d images  %s/%s  %.0fs" % (
            "#" * full, "." * (width - full), self.done_images, self.total_images,
            size(self.moved), size(self.total_bytes), now - self.started))
        self.stream.flush()
