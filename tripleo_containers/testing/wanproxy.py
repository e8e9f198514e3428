"""A user-space WAN in front of a loopback server, for benchmarks.

This kernel refuses ``netem``, so latency and per-connection caps are made
here: a TCP proxy (``WanProxy(upstream, rtt=0.2, link_rate=..., conn_rate=...)
.start()``; point the tool at ``proxy.address``) that

* charges each new connection ``handshake_rtts`` round trips before its
  first byte may leave (TCP's SYN/SYN-ACK is one; TLS adds one or two),
* holds every chunk RTT/2 in each direction (a chunk read at t leaves at
  t + RTT/2 at the earliest, in order),
* paces downstream bytes (server -> client) through a per-connection and a
  whole-link token bucket, as a CDN or a long TCP path caps each connection
  and the site's uplink caps their sum; upstream bytes (requests) may get a
  rate of their own.

The model is "serialise at the bottleneck, then propagate": a chunk takes
its slot on both buckets (the later of the two wins), then arrives RTT/2
after its slot ends.  Slots are reserved one chunk ahead per connection, so
connections share the link in arrival order rather than one hogging it.
Buckets hold a few milliseconds of credit so that timer overshoot does not
drain the rate at high speeds.  There is no slow start and no loss: the
proxy gives a tool the best case of a long, capped path, which is the case
in which the tool's own waits show.

Every connection runs on one asyncio loop in a background thread; reads
have an idle timeout, queues are bounded in bytes, and ``stop()`` cancels
everything.  Counters (``connections``, ``bytes_down``, ``bytes_up``,
``open_connections``) and a per-connection record (``records``: accepted,
first and last downstream byte, bytes, in loop time) tell a test or a
benchmark what went through.

``parse_profile("200ms,100mbit,20mbit")`` -> (rtt seconds, link bytes/s,
connection bytes/s) for command lines.
"""
import asyncio
import re
import threading

CHUNK = 64 * 1024
IDLE_TIMEOUT = 120.0
CONNECT_TIMEOUT = 10.0
# Credit a bucket may bank while idle: absorbs timer overshoot (a sleep
# that wakes a millisecond late would otherwise cost 40 % at 400 Mbit/s
# with 64 KiB chunks) without letting a connection burst noticeably.
BURST_SECONDS = 0.01


class _Bucket(object):
    """Pacing clock of a token bucket: when the next byte may leave."""

    __slots__ = ("rate", "next_free")

    def __init__(self, rate):
        self.rate = float(rate) if rate else None
        self.next_free = 0.0

    def reserve(self, start, size):
        """The end of a ``size``-byte slot beginning no earlier than
        ``start``; start is already the max over every bucket involved."""
        if self.rate is None:
            return start
        self.next_free = start + size / self.rate
        return self.next_free

    def earliest(self, now):
        if self.rate is None:
            return now - BURST_SECONDS
        return max(self.next_free, now - BURST_SECONDS)


class ConnectionRecord(object):
    __slots__ = ("accepted", "first_down", "last_down", "bytes_down", "bytes_up",
                 "closed")

    def __init__(self, accepted):
        self.accepted = accepted
        self.first_down = None
        self.last_down = None
        self.bytes_down = 0
        self.bytes_up = 0
        self.closed = None

    def __repr__(self):
        return "ConnectionRecord(down=%d up=%d)" % (self.bytes_down, self.bytes_up)


class WanProxy(object):
    """See the module docstring. Rates are bytes per second (None: no cap);
    ``rtt`` seconds; ``upstream`` "host:port"."""

    def __init__(self, upstream, rtt=0.0, link_rate=None, conn_rate=None,
                 up_rate=None, handshake_rtts=1, max_connections=512,
                 buffer_bytes=None):
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.rtt = float(rtt)
        self.link = _Bucket(link_rate)
        self.link_up = _Bucket(up_rate)
        self.conn_rate = conn_rate
        self.up_rate = up_rate
        self.handshake_rtts = handshake_rtts
        self.max_connections = max_connections
        # What one direction of one connection may hold in flight: enough
        # for the bandwidth-delay product (or the pipe drains between
        # chunks), bounded so a client that stops reading cannot make the
        # proxy buffer a whole blob.
        bdp = (conn_rate or link_rate or 0) * self.rtt
        self.buffer_bytes = buffer_bytes or int(max(4 * CHUNK, 4 * bdp))
        self.connections = 0
        self.open_connections = 0
        self.bytes_down = 0
        self.bytes_up = 0
        self.records = []
        self.address = None
        self._loop = None
        self._thread = None
        self._server = None
        self._ready = threading.Event()
        self._error = None

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout=10.0):
        self._thread = threading.Thread(target=self._run, name="wanproxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("WAN proxy did not start within %.0f s" % timeout)
        if self._error is not None:
            raise self._error
        return self

    def _run(self):
        loop = self._loop = asyncio.new_event_loop()
        try:
            self._server = loop.run_until_complete(asyncio.start_server(
                self._handle, "127.0.0.1", 0, limit=CHUNK))
            self.address = "127.0.0.1:%d" % self._server.sockets[0].getsockname()[1]
        except OSError as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def stop(self, timeout=5.0):
        loop = self._loop
        if loop is None or self._thread is None:
            return
        if self._thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                future.result(timeout)
            except Exception:  # stopping anyway
                pass
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout)

    async def _shutdown(self):
        self._server.close()
        # Every task of the loop, the pipes of connections still open
        # included (a loop closed under a pending task complains at exit),
        # and again for the pipes a handler started meanwhile.
        for _ in range(5):
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=2.0)
        await self._server.wait_closed()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def time(self):
        """The loop clock that ``records`` use (time.monotonic here)."""
        return self._loop.time()

    # -- one connection ------------------------------------------------------

    async def _handle(self, creader, cwriter):
        loop = asyncio.get_running_loop()
        record = ConnectionRecord(loop.time())
        uwriter = None
        counted = False
        try:
            if self.open_connections >= self.max_connections:
                return
            counted = True
            self.connections += 1
            self.open_connections += 1
            self.records.append(record)
            # Nothing the client sends may reach the server before the
            # handshake is over (SYN, SYN-ACK, then data with the ACK).
            ready = record.accepted + self.handshake_rtts * self.rtt
            try:
                ureader, uwriter = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream, limit=CHUNK), CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                return
            conn_down = _Bucket(self.conn_rate)
            conn_up = _Bucket(self.up_rate)
            up = asyncio.ensure_future(self._pipe(
                creader, uwriter, ready, (conn_up, self.link_up), record, False))
            down = asyncio.ensure_future(self._pipe(
                ureader, cwriter, ready, (conn_down, self.link), record, True))
            try:
                done, pending = await asyncio.wait(
                    (up, down), return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for fut in (up, down):
                    fut.cancel()
                await asyncio.gather(up, down, return_exceptions=True)
        except asyncio.CancelledError:
            pass
        finally:
            if counted:
                self.open_connections -= 1
            record.closed = loop.time()
            for writer in (cwriter, uwriter):
                if writer is not None:
                    writer.close()

    async def _pipe(self, reader, writer, ready, buckets, record, downstream):
        """Copy one direction: pace, then deliver each chunk RTT/2 later."""
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()
        space = asyncio.Condition()
        held = [0]
        delay = self.rtt / 2.0

        async def produce():
            while True:
                data = await asyncio.wait_for(reader.read(CHUNK), IDLE_TIMEOUT)
                if not data:
                    break
                size = len(data)
                async with space:
                    await space.wait_for(lambda: held[0] < self.buffer_bytes)
                    held[0] += size
                now = loop.time()
                start = max([ready] + [b.earliest(now) for b in buckets])
                end = max(b.reserve(start, size) for b in buckets)
                # A slot may lie in the past by the banked credit; the bytes
                # still cannot arrive before they were read plus RTT/2.
                queue.put_nowait((max(end, now) + delay, data))
                # Reserve the next slot only when this one is over, so
                # that other connections interleave on the shared link.
                if end > loop.time():
                    await asyncio.sleep(end - loop.time())
            queue.put_nowait((None, None))

        async def deliver():
            while True:
                due, data = await queue.get()
                if data is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await asyncio.wait_for(writer.drain(), IDLE_TIMEOUT)
                size = len(data)
                if downstream:
                    now = loop.time()
                    if record.first_down is None:
                        record.first_down = now
                    record.last_down = now
                    record.bytes_down += size
                    self.bytes_down += size
                else:
                    record.bytes_up += size
                    self.bytes_up += size
                async with space:
                    held[0] -= size
                    space.notify_all()

        producer = asyncio.ensure_future(produce())
        try:
            await deliver()
            await producer
        finally:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)


_RATE_UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9}


def parse_rate(text):
    """'100mbit' -> bytes per second (12.5e6); 'inf' or '0' -> None."""
    text = text.strip().lower()
    if text in ("inf", "0", "none", "unlimited"):
        return None
    match = re.match(r"^([0-9.]+)\s*(bit|kbit|mbit|gbit)$", text)
    if not match:
        raise ValueError("rate %r: write a number and bit, kbit, mbit or gbit "
                         "(e.g. 100mbit)" % text)
    return float(match.group(1)) * _RATE_UNITS[match.group(2)] / 8.0


def parse_duration(text):
    """'200ms' or '0.2s' -> seconds."""
    text = text.strip().lower()
    match = re.match(r"^([0-9.]+)\s*(ms|s)$", text)
    if not match:
        raise ValueError("duration %r: write a number and ms or s (e.g. 200ms)" % text)
    value = float(match.group(1))
    return value / 1000.0 if match.group(2) == "ms" else value


def parse_profile(text):
    """'RTT,LINK,CONN' (e.g. '200ms,100mbit,20mbit') -> (rtt s, link B/s,
    connection B/s)."""
    parts = text.split(",")
    if len(parts) != 3:
        raise ValueError("WAN profile %r: write RTT,LINK,CONN (e.g. 200ms,100mbit,20mbit)"
                         % text)
    return parse_duration(parts[0]), parse_rate(parts[1]), parse_rate(parts[2])
