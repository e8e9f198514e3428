"""One big blob read as parallel ranged GETs, reassembled in order.

Over a long path each connection is capped (a CDN, a TCP window over a long
round trip), so one blob much larger than the rest, read on one connection,
finishes long after every other transfer: 64 MiB at 20 Mbit/s is 27 s
whatever the link.  distribution serves ``Range`` on blob GETs (206 with
``Content-Range``).

A big blob starts as one stream (a range over the whole blob).  After
``probe`` seconds, if that stream is slower than ``slow_rate``, the rest is
cut into parts read ``window`` at a time, each on its own connection, and
handed on strictly in order: one stream still, the body of the one PUT,
hashed as it passes (VerifiedStream).  A fast source (a near registry) is
never cut, so a near copy costs no extra request and no buffer.  A break in
the first stream also cuts the rest into parts instead of failing.

Memory is bounded by ``window`` parts per blob and by the ``permits``
(BUDGET parts) that every body of one client shares.  A part that breaks is
read again (``attempts`` times) from where it broke; a source that answers
200 to the range (no Range support) is streamed whole.

``RangedBody(open_range, size, ...)`` looks like the streamed response that
VerifiedStream reads: ``iter_content``, ``method``, ``url``, ``close``.
``open_range(start, end)`` (end inclusive) returns a streamed response;
``read(resp)`` yields its chunks (the client passes its stall rule);
``retryable(exc)`` says whether a part that broke with ``exc`` is worth
reading again.
"""
import threading
import time
from concurrent import futures

# Blobs above this are worth watching: below it the extra requests cost
# more than a capped connection loses.
MIN_SIZE = 16 * 1024 * 1024
PART = 4 * 1024 * 1024
# Parts in flight for one blob, and for every blob of a client at once
# (what bounds memory: BUDGET x PART).  Two big blobs (a Kolla base and
# openstack-base) each get a whole window: with 12, the second one's parts
# came in waves and every image's manifest waited for it at the end of the
# run (docs/upload.md, "Targets").
WINDOW = 8
BUDGET = 16
ATTEMPTS = 3
# A first stream slower than this after PROBE seconds gets help: 16 MiB/s
# is more than a capped WAN connection gives and less than a near registry.
PROBE = 1.0
SLOW_RATE = 16 * 1024 * 1024


class RangeRefused(Exception):
    """The source answered a range with something else than 206 + the
    asked Content-Range, or a part ended short."""


def worth_it(size, min_size=MIN_SIZE):
    return size is not None and size > min_size


class RangedBody(object):
    method = "GET"

    def __init__(self, open_range, size, url="", part=PART, window=WINDOW,
                 attempts=ATTEMPTS, read=None, retryable=None, permits=None,
                 probe=PROBE, slow_rate=SLOW_RATE, clock=time.monotonic):
        self.open_range = open_range
        self.size = size
        self.url = url
        self.part = max(1, int(part))
        self.window = max(1, int(window))
        self.attempts = max(1, int(attempts))
        self.read = read or (lambda resp: resp.iter_content(1024 * 1024))
        self.retryable = retryable or (lambda exc: isinstance(exc, OSError))
        # Parts buffered at once across every body sharing ``permits``.
        self.permits = permits or threading.Semaphore(self.window)
        self.probe = probe
        self.slow_rate = slow_rate
        self.clock = clock
        self.ranges = []
        self.split_at = None
        self._closed = threading.Event()
        self._pool = None
        self._whole = None

    # -- the response-like face ---------------------------------------------

    def iter_content(self, chunk_size=None, partial=False):
        if self.size <= 0:
            return
        head = self._whole = self.open_range(0, self.size - 1)
        if head.status_code == 200:
            # No Range support: the whole blob on this one connection.
            yield from (c for c in head.iter_content(chunk_size, partial) if c)
            return
        try:
            _check_range(head, (0, self.size - 1), self.size)
        except RangeRefused:
            head.close()
            raise
        got, started, watching = 0, self.clock(), True
        try:
            for chunk in self.read(head):
                if not chunk:
                    continue
                got += len(chunk)
                yield chunk
                if watching and got < self.size:
                    elapsed = self.clock() - started
                    if elapsed >= self.probe:
                        watching = False
                        if (got / max(elapsed, 1e-6) < self.slow_rate
                                and self.size - got > self.part):
                            self.split_at = got
                            break
        except Exception as exc:
            if got >= self.size or not (self.retryable(exc) or isinstance(exc, RangeRefused)):
                raise
            self.split_at = got  # mend the break with ranges from here
        finally:
            head.close()
        if self.split_at is None:
            return
        self.ranges = [(start, min(self.size, start + self.part) - 1)
                       for start in range(self.split_at, self.size, self.part)]
        yield from self._parts()

    def _parts(self):
        permits = self.permits
        # The part needed next may wait for a permit only while this body
        # holds none: every body holding permits has its next part in flight
        # and so frees them, and no two bodies wait on each other.
        held = 0
        pending = {}
        self._pool = futures.ThreadPoolExecutor(self.window, "range")
        try:
            for index in range(len(self.ranges)):
                if index not in pending:
                    permits.acquire()
                    held += 1
                    pending[index] = self._pool.submit(self._read, index, None)
                # Read ahead only on permits free now.
                for ahead in range(index + 1, min(index + self.window, len(self.ranges))):
                    if ahead in pending:
                        continue
                    if not permits.acquire(blocking=False):
                        break
                    held += 1
                    pending[ahead] = self._pool.submit(self._read, ahead, None)
                chunks = pending.pop(index).result()
                while chunks:
                    yield chunks.pop(0)
                permits.release()
                held -= 1
        finally:
            self.close()
            for fut in pending.values():
                fut.cancel()
            for _ in range(held):
                permits.release()

    def close(self):
        self._closed.set()
        if self._whole is not None:
            self._whole.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)

    # -- workers ---------------------------------------------------------------

    def _read(self, index, resp):
        """The chunks of part ``index``, re-reading from where a break cut it."""
        start, end = self.ranges[index]
        chunks, got, failures = [], 0, 0
        while start + got <= end:
            if self._closed.is_set():
                raise RangeRefused("cancelled")
            try:
                if resp is None:
                    resp = self.open_range(start + got, end)
                    _check_range(resp, (start + got, end), self.size)
                for chunk in self.read(resp):
                    if self._closed.is_set():
                        raise RangeRefused("cancelled")
                    if chunk:
                        chunks.append(chunk)
                        got += len(chunk)
                if start + got <= end:
                    raise RangeRefused("part %d-%d ended after %d bytes" % (
                        start, end, got))
            except Exception as exc:
                failures += 1
                if (failures >= self.attempts or self._closed.is_set()
                        or not (isinstance(exc, RangeRefused) or self.retryable(exc))):
                    raise
            finally:
                if resp is not None:
                    resp.close()
                resp = None
        if start + got != end + 1:
            raise RangeRefused("part %d-%d got %d bytes" % (start, end, got))
        return chunks


def _check_range(resp, asked, size):
    want = "bytes %d-%d/%d" % (asked[0], asked[1], size)
    got = resp.headers.get("Content-Range", "")
    if resp.status_code != 206 or got.replace(" ", "") != want.replace(" ", ""):
        raise RangeRefused("asked %s, got %d %s" % (want, resp.status_code, got or "-"))
