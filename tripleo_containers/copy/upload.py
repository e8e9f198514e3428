"""The upload use case: images files in, per-image results out."""
import logging

from tripleo_containers import exceptions
from tripleo_containers.copy import engine
from tripleo_containers.copy import images_file

LOG = logging.getLogger(__name__)


def _default_destination():
    from tripleo_containers.prepare import undercloud
    return undercloud.default_push_destination()


def parse_ca_bundles(values):
    """([HOST:PORT=]FILE, ...) -> (default verify, {host: file})."""
    import os
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
                timeout=None, concurrency=0, cancel=None):
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
    return client.Client(transport.Transport(
        keychain=keychain, insecure=insecure, ca_bundles=per_host,
        default_verify=default_verify, cancel=cancel, **extra))


def upload(config_files, jobs=4, dry_run=False, insecure=(), ca_bundles=(),
           credentials_file=None, progress=None, default_destination=None,
           timeout=None, cancel=None, verify=False):
    """Copy every image of ``config_files``; returns ([ImageResult], Plan).

    Raises InputError for unusable input (files, options); per-image
    problems are results with status 'failed'. Setting ``cancel`` (a
    threading.Event) ends the run early: unfinished images are
    'interrupted'. ``verify``: see engine.Engine.run.
    """
    images = images_file.load(config_files)
    items = images_file.jobs_from(
        images, default_destination or _default_destination)
    copy_jobs = [i for i in items if isinstance(i, engine.CopyJob)]
    insecure = list(insecure or ()) + [h for h in images.insecure if h not in (insecure or ())]
    registry_client = make_client(insecure, ca_bundles, credentials_file,
                                  timeout=timeout,
                                  concurrency=jobs + engine.META_JOBS + 4,
                                  cancel=cancel)
    progress = progress or engine.Progress()
    progress.starting(len(items))
    for item in items:
        if not isinstance(item, engine.CopyJob):
            progress.image_done(item)
    try:
        results, plan = engine.Engine(registry_client, jobs=jobs,
                                      progress=progress).run(copy_jobs, dry_run=dry_run,
                                                             verify=verify)
    finally:
        registry_client.transport.close()
    copied = iter(results)
    ordered = [next(copied) if isinstance(i, engine.CopyJob) else i for i in items]
    bad = len(items) - len(copy_jobs)
    plan.images += bad
    plan.images_failed += bad
    return ordered, plan
