"""Connections opened early (Transport.warm): the requests that follow use
them instead of opening their own, over plain HTTP and over verified TLS; TLS
is still verified; a registry that cannot be reached is still reported by
the request; what no request used is closed with the transport.  Real
distribution registries behind the WAN proxy of the benchmarks, which
counts the connections it accepts."""
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


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https-verified"])
def test_requests_use_the_connections_opened_early(proxied, tls):
    reg, proxy = proxied(tls=tls)
    if tls:
        tr = transport.Transport(ca_bundles={proxy.address: reg.ca_cert})
    else:
        tr = transport.Transport(insecure=[proxy.address])
    try:
        tr.warm(proxy.address, 6)
        assert _wait(lambda: proxy.connections == 6)
        # the ping and five requests, at once: no connection of their own
        assert _at_once(tr, proxy.address, 5) == [200] * 5
        assert proxy.connections == 6
    finally:
        tr.close()


def test_early_connections_do_not_bypass_tls_verification(proxied):
    reg, proxy = proxied(tls=True)
    tr = transport.Transport()  # the session CA is not trusted
    try:
        tr.warm(proxy.address, 3)
        with pytest.raises(errors.RegistryError) as info:
            tr.request("GET", proxy.address, "/v2/")
        assert "certificate" in str(info.value).lower()
    finally:
        tr.close()


def test_connections_no_request_took_are_closed_with_the_transport(proxied):
    reg, proxy = proxied()
    tr = transport.Transport(insecure=[proxy.address])
    tr.warm(proxy.address, 4)
    assert _wait(lambda: proxy.open_connections == 4)
    tr.close()
    assert _wait(lambda: proxy.open_connections == 0)


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
