"""The WAN proxy of the benchmarks: bytes pass intact and in order both ways,
nothing arrives earlier than the emulated path allows, connections and the
proxy itself close, and profiles parse.  (How close the rates come to the
asked ones is measured by ``tools/bench_upload.py --wan-selfcheck``, not
asserted here.)"""
import hashlib
import os
import socket
import threading
import time

import pytest

from tripleo_containers.testing import wanproxy


class _Server(object):
    """A loopback TCP server: reads a 4-byte length, that many bytes, then
    answers the sha256 of what it read followed by ``payload``, and closes."""

    def __init__(self, payload):
        self.payload = payload
        self.received = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(10)
        with conn:
            try:
                size = int.from_bytes(_read_exactly(conn, 4), "big")
                body = _read_exactly(conn, size)
                self.received.append(body)
                conn.sendall(hashlib.sha256(body).digest() + self.payload)
            except OSError:
                pass  # the tests of closing end clients midway

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


def _read_exactly(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(min(65536, size - len(data)))
        if not chunk:
            raise OSError("closed after %d of %d bytes" % (len(data), size))
        data += chunk
    return data


def _read_to_eof(sock):
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


@pytest.fixture
def server():
    srv = _Server(os.urandom(300 * 1024))
    yield srv
    srv.stop()


@pytest.fixture
def proxy_factory():
    started = []

    def make(upstream, **kw):
        proxy = wanproxy.WanProxy(upstream, **kw).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


def _exchange(address, body):
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(len(body).to_bytes(4, "big") + body)
        return _read_to_eof(sock)


def _wait_for(predicate, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_bytes_pass_intact_both_ways_and_never_early(server, proxy_factory):
    rtt, rate = 0.02, 4e6
    proxy = proxy_factory(server.address, rtt=rtt, link_rate=8e6, conn_rate=rate,
                          up_rate=rate)
    bodies = [os.urandom(200 * 1024), os.urandom(10)]
    answers = [_exchange(proxy.address, body) for body in bodies]
    assert server.received == bodies
    for body, answer in zip(bodies, answers):
        assert answer == hashlib.sha256(body).digest() + server.payload
    assert proxy.connections == 2
    assert _wait_for(lambda: proxy.open_connections == 0)
    down = 32 + len(server.payload)
    assert [(r.bytes_up, r.bytes_down) for r in proxy.records] == [
        (4 + len(b), down) for b in bodies]
    assert proxy.bytes_down == 2 * down
    # Lower bounds hold whatever the machine's load: the handshake and a
    # round trip before the first answer byte, and the per-connection rate
    # (less the banked credit) for the upload and the answer.
    for record, body in zip(proxy.records, bodies):
        earliest = 2 * rtt + (4 + len(body)) / rate
        assert record.first_down - record.accepted >= earliest - wanproxy.BURST_SECONDS
        assert (record.last_down - record.accepted
                >= earliest + down / rate - 3 * wanproxy.BURST_SECONDS)


def test_connections_share_the_link_in_order_and_close(server, proxy_factory):
    proxy = proxy_factory(server.address, rtt=0.01, link_rate=20e6, conn_rate=10e6)
    bodies = [os.urandom(1000 + i) for i in range(6)]
    answers = [None] * len(bodies)

    def run(i):
        answers[i] = _exchange(proxy.address, bodies[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for body, answer in zip(bodies, answers):
        assert answer == hashlib.sha256(body).digest() + server.payload
    assert sorted(server.received, key=len) == bodies
    assert _wait_for(lambda: proxy.open_connections == 0)
    assert all(r.closed is not None for r in proxy.records)


def test_upstream_refusing_closes_the_client(proxy_factory):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    address = "127.0.0.1:%d" % sock.getsockname()[1]
    sock.close()  # nothing listens there now
    proxy = proxy_factory(address, rtt=0.01)
    host, port = proxy.address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as client:
        assert _read_to_eof(client) == b""
    assert _wait_for(lambda: proxy.open_connections == 0)


def test_connection_limit_closes_the_excess(server, proxy_factory):
    proxy = proxy_factory(server.address, max_connections=1)
    host, port = proxy.address.split(":")
    with socket.create_connection((host, int(port)), timeout=10):
        assert _wait_for(lambda: proxy.open_connections == 1)
        with socket.create_connection((host, int(port)), timeout=10) as extra:
            assert _read_to_eof(extra) == b""
    assert proxy.connections == 1


def test_stop_ends_idle_and_stalled_connections(server, proxy_factory):
    # A client that never sends and one that never reads: stop() still ends
    # the proxy's thread.
    proxy = proxy_factory(server.address, rtt=0.01, conn_rate=1e6)
    host, port = proxy.address.split(":")
    idle = socket.create_connection((host, int(port)), timeout=10)
    stalled = socket.create_connection((host, int(port)), timeout=10)
    stalled.sendall((5).to_bytes(4, "big") + b"hello")
    try:
        assert _wait_for(lambda: proxy.open_connections == 2)
        proxy.stop()
        assert not proxy._thread.is_alive()
        assert _read_to_eof(idle) == b""
    finally:
        idle.close()
        stalled.close()


def test_bucket_slots_take_the_later_of_connection_and_link():
    conn, link = wanproxy._Bucket(10.0), wanproxy._Bucket(100.0)
    start = max(conn.earliest(0.0), link.earliest(0.0), 0.0)
    assert max(conn.reserve(start, 10), link.reserve(start, 10)) == 1.0
    assert link.next_free == pytest.approx(0.1)
    # the next chunk waits for the connection's slot, not the link's
    assert max(conn.earliest(0.5), link.earliest(0.5)) == 1.0
    # idle credit is bounded
    assert conn.earliest(100.0) == 100.0 - wanproxy.BURST_SECONDS
    assert wanproxy._Bucket(None).reserve(3.0, 10 ** 9) == 3.0


@pytest.mark.parametrize("text,expected", [
    ("200ms,100mbit,20mbit", (0.2, 12.5e6, 2.5e6)),
    ("0.06s,400mbit,inf", (0.06, 50e6, None)),
    ("1s,1gbit,800kbit", (1.0, 125e6, 100e3)),
])
def test_profiles_parse(text, expected):
    assert wanproxy.parse_profile(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["200ms,100mbit", "200,100mbit,20mbit",
                                  "200ms,100MB,20mbit", "fast,1gbit,1gbit"])
def test_bad_profiles_say_what_to_write(text):
    with pytest.raises(ValueError, match="write"):
        wanproxy.parse_profile(text)
