"""Parallel ranged reads of one blob: one stream while it is fast, parts in
order once it is slow or breaks, memory bounded by the window and the shared
permits, broken parts re-read from where they broke, sources without Range
support streamed whole."""
import os
import threading

import pytest

from tripleo_containers.registry import ranged


class _Resp(object):
    def __init__(self, data, status=206, content_range=None, break_after=None):
        self.data = data
        self.status_code = status
        self.headers = {"Content-Range": content_range} if content_range else {}
        self.break_after = break_after
        self.closed = False

    def iter_content(self, size, partial=False):
        size = min(size or 1024, 1024)  # small pieces, so a break can fall mid-part
        for offset in range(0, len(self.data), size):
            if self.break_after is not None and offset >= self.break_after:
                raise ConnectionError("connection reset")
            yield self.data[offset:offset + size]

    def close(self):
        self.closed = True


class _Source(object):
    """A blob behind open_range: records every range asked, can break a
    range once after some bytes, can ignore Range."""

    def __init__(self, data, ranges=True, breaks=None):
        self.data = data
        self.ranges = ranges
        self.breaks = dict(breaks or {})
        self.asked = []
        self.open = 0
        self.peak_open = 0
        self.lock = threading.Lock()
        self.responses = []

    def __call__(self, start, end):
        with self.lock:
            self.asked.append((start, end))
        if not self.ranges:
            resp = _Resp(self.data, status=200)
        else:
            resp = _Resp(self.data[start:end + 1],
                         content_range="bytes %d-%d/%d" % (start, end, len(self.data)),
                         break_after=self.breaks.pop(start, None))
        self.responses.append(resp)
        return resp


def _read(body):
    return b"".join(body.iter_content(4096))


def _slow(source, size, **kw):
    """A body whose first stream is judged slow after its first piece."""
    return ranged.RangedBody(source, size, probe=0.0, slow_rate=float("inf"), **kw)


def test_a_slow_stream_is_cut_into_parts_that_come_back_in_order():
    data = os.urandom(100 * 1000 + 7)
    source = _Source(data)
    body = _slow(source, len(data), part=10 * 1000, window=4)
    assert _read(body) == data
    # the first stream gave one 1024-byte piece, the parts the rest
    assert body.split_at == 1024
    assert source.asked[0] == (0, len(data) - 1)
    assert sorted(source.asked[1:]) == [(s, min(len(data), s + 10000) - 1)
                                        for s in range(1024, len(data), 10000)]
    assert all(r.closed for r in source.responses)


def test_a_fast_stream_is_never_cut():
    data = os.urandom(100 * 1000)
    source = _Source(data)
    body = ranged.RangedBody(source, len(data), part=10000, probe=0.0, slow_rate=0)
    assert _read(body) == data
    assert source.asked == [(0, len(data) - 1)] and body.split_at is None


def test_a_break_in_the_first_stream_is_mended_with_parts():
    data = os.urandom(50 * 1000)
    source = _Source(data, breaks={0: 5000})
    body = ranged.RangedBody(source, len(data), part=10000, probe=60.0,
                             retryable=lambda exc: isinstance(exc, ConnectionError))
    assert _read(body) == data
    assert body.split_at == 5120 and source.asked[1] == (5120, 15119)


def test_a_broken_part_is_read_again_from_where_it_broke():
    data = os.urandom(50 * 1000)
    source = _Source(data, breaks={21024: 4096})
    body = _slow(source, len(data), part=10000, window=3)
    assert _read(body) == data
    assert (21024 + 4096, 31023) in source.asked


def test_a_part_that_keeps_breaking_fails_the_stream():
    data = os.urandom(30 * 1000)

    class Broken(_Source):
        def __call__(self, start, end):
            resp = _Source.__call__(self, start, end)
            if start >= 10000:
                resp.break_after = 0
            return resp

    body = _slow(Broken(data), len(data), part=10000, window=2,
                 retryable=lambda exc: isinstance(exc, ConnectionError))
    with pytest.raises(ConnectionError):
        _read(body)


def test_without_range_support_the_whole_blob_streams_once():
    data = os.urandom(40 * 1000)
    source = _Source(data, ranges=False)
    body = _slow(source, len(data), part=10000, window=4)
    assert _read(body) == data
    assert len(source.asked) == 1


def test_a_wrong_content_range_is_refused():
    data = os.urandom(20 * 1000)

    def lying(start, end):
        return _Resp(data[start:end + 1], content_range="bytes 0-1/2")

    with pytest.raises(ranged.RangeRefused, match="asked bytes 0-19999/20000"):
        _read(_slow(lying, len(data), part=10000))


def test_reading_ahead_is_bounded_by_the_window():
    # The consumer stops after the first part's first chunk: at most
    # `window` parts were ever asked for, not the whole blob.
    data = os.urandom(400 * 1000)
    source = _Source(data)
    body = _slow(source, len(data), part=10000, window=3)
    chunks = body.iter_content(4096)
    assert next(chunks) + next(chunks) == data[:2048]
    chunks.close()
    assert len(source.asked) <= 1 + 3


def test_only_big_blobs_are_worth_cutting():
    assert not ranged.worth_it(None)
    assert not ranged.worth_it(ranged.MIN_SIZE)
    assert ranged.worth_it(ranged.MIN_SIZE + 1)


class _CountingPermits(object):
    def __init__(self, count):
        self.sem = threading.Semaphore(count)
        self.lock = threading.Lock()
        self.held = 0
        self.peak = 0

    def acquire(self, blocking=True):
        if not self.sem.acquire(blocking):
            return False
        with self.lock:
            self.held += 1
            self.peak = max(self.peak, self.held)
        return True

    def release(self):
        with self.lock:
            self.held -= 1
        self.sem.release()


def test_bodies_sharing_permits_never_buffer_more_and_never_block_each_other():
    permits = _CountingPermits(2)
    blobs = [os.urandom(90 * 1000 + i) for i in range(3)]
    out = [None] * len(blobs)

    def run(i):
        body = _slow(_Source(blobs[i]), len(blobs[i]), part=10000, window=4,
                     permits=permits)
        out[i] = _read(body)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(blobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert out == blobs
    assert permits.peak <= 2 and permits.held == 0


def test_permits_come_back_when_the_reader_stops_early():
    permits = _CountingPermits(3)
    data = os.urandom(100 * 1000)
    chunks = _slow(_Source(data), len(data), part=10000, window=3,
                   permits=permits).iter_content(4096)
    next(chunks)
    next(chunks)
    chunks.close()
    assert permits.held == 0
