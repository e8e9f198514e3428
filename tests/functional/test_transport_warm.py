"""Connections opened early (Transport.warm): the requests that follow use
them instead of opening their own (plain HTTP; https registries are not
warmed, see Transport.warm); a registry that cannot be reached is still
reported by the request.  Real distribution registries behind the WAN proxy
of the benchmarks, which counts the connections it accepts."""
import threading
import time

import pytest

from tripleo_containers.registry import errors, transport
from tripleo_containers.testing import wanproxy


@pytest.fixture
def proxied(registry_factory):
    started = []

    def make(tls=False):
        reg = registry_factory(tls=tls)
        proxy = wanproxy.WanProxy(reg.address).start()
        started.append(proxy)
        return reg, proxy

    yield make
    for proxy in started:
        proxy.stop()


def _idle_connected(tr, scheme, address, verify):
    host, port = address.rsplit(":", 1)
    pool = tr.pools.pool(scheme, host, int(port), verify)
    return sum(1 for conn in list(pool.pool.queue)
               if conn is not None and getattr(conn, "sock", None) is not None)


def _wait(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _at_once(tr, registry, count):
    results = [None] * count

    def one(i):
        try:
            resp = tr.request("GET", registry, "/v2/")
            results[i] = resp.status_code
            resp.close()
        except Exception as exc:  # reported below
            results[i] = exc
    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_requests_use_the_connections_opened_early(proxied):
    reg, proxy = proxied()
    tr = transport.Transport(insecure=[proxy.address])
    try:
        tr.warm(proxy.address, 6)
        assert _wait(lambda: _idle_connected(tr, "http", proxy.address, None) == 6)
        assert proxy.connections == 6
        # the ping and five requests, at once: no connection of their own
        assert _at_once(tr, proxy.address, 5) == [200] * 5
        assert proxy.connections == 6
    finally:
        tr.close()


def test_https_registries_are_not_warmed(proxied):
    reg, proxy = proxied(tls=True)
    tr = transport.Transport(ca_bundles={proxy.address: reg.ca_cert})
    try:
        tr.warm(proxy.address, 3)
        time.sleep(0.3)
        assert proxy.connections == 0
        assert _at_once(tr, proxy.address, 2) == [200] * 2
    finally:
        tr.close()


def test_a_registry_that_is_not_there_is_reported_by_the_request(registry_factory):
    reg = registry_factory()
    address = reg.address
    reg.stop()
    tr = transport.Transport(insecure=[address], retries=0, timeout=(2, 2))
    try:
        tr.warm(address, 4)
        time.sleep(0.2)
        with pytest.raises(errors.RegistryError) as info:
            tr.request("GET", address, "/v2/")
        assert address in str(info.value)
    finally:
        tr.close()
