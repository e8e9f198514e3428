"""The one way to build a registry Client from what a user gave.

Every command that talks to registries (upload, image list/show/delete,
prepare's tag discovery and pinning, validate --check-images, the daemon
upload) builds its client here, so the options mean the same everywhere.
The client is used with ``with``: leaving the block closes its pools.
"""
import os

from tripleo_containers import exceptions


def parse_ca_bundles(values):
    """([HOST:PORT=]FILE, ...) -> (default verify, {host: file})."""
    default, per_host = True, {}
    for value in values or ():
        host, sep, path = value.rpartition("=")
        if not os.path.isfile(path):
            raise exceptions.InputError(
                "--ca-bundle %s: %s is not a readable file" % (value, path))
        if sep:
            per_host[host] = path
        else:
            default = path
    return default, per_host


def make_client(insecure=(), ca_bundles=(), credentials_file=None, env=None,
                timeout=None, concurrency=0, retries=None, cancel=None):
    """A Client for these options: ``insecure`` registries talk plain HTTP,
    ``ca_bundles`` as --ca-bundle, ``credentials_file`` wins over the auth
    files of ``env`` (default os.environ), ``timeout`` in seconds without a
    byte, ``concurrency`` threads that may share one host, ``retries`` per
    request (default the transport's), ``cancel`` a threading.Event that
    stops every wait and transfer of the client when set."""
    from tripleo_containers.registry import client
    from tripleo_containers.registry import credentials
    from tripleo_containers.registry import transport
    keychain = credentials.Keychain.from_file(credentials_file, env=env)
    default_verify, per_host = parse_ca_bundles(ca_bundles)
    extra = {}
    if timeout:
        extra["timeout"] = (min(15.0, timeout), timeout)
    if concurrency:
        # one pooled connection per thread that may talk to the same host,
        # or urllib3 discards (and warns about) the surplus
        extra["pool_size"] = max(64, concurrency)
    if retries is not None:
        extra["retries"] = retries
    return client.Client(transport.Transport(
        keychain=keychain, insecure=insecure, ca_bundles=per_host,
        default_verify=default_verify, cancel=cancel, **extra))
