"""The upload use case: images files in, per-image results out."""
import logging

from tripleo_containers.copy import engine
from tripleo_containers.copy import images_file
from tripleo_containers.registry import connect

LOG = logging.getLogger(__name__)


def _default_destination():
    from tripleo_containers.registry import undercloud
    return undercloud.default_push_destination()


def check_destinations(destinations):
    from tripleo_containers import exceptions
    from tripleo_containers.registry import reference
    for value in destinations or ():
        if not reference.valid_host(value):
            raise exceptions.InputError(
                "--push-destination %r is not a registry address; use HOST:PORT, "
                "e.g. 192.168.24.1:8787 ([v6addr]:8787 for IPv6)" % value)


def upload(config_files, jobs=4, dry_run=False, insecure=(), ca_bundles=(),
           credentials_file=None, progress=None, default_destination=None,
           timeout=None, cancel=None, verify=False, destinations=()):
    """Copy every image of ``config_files``; returns ([ImageResult], Plan).

    ``destinations`` (host:port, from --push-destination) replace every
    entry's own push_destination: each image goes to each of them.

    Raises InputError for unusable input (files, options); per-image
    problems are results with status 'failed'. Setting ``cancel`` (a
    threading.Event) ends the run early: unfinished images are
    'interrupted'. ``verify``: see engine.Engine.run.
    """
    check_destinations(destinations)
    images = images_file.load(config_files)
    items = images_file.jobs_from(
        images, default_destination or _default_destination, destinations)
    copy_jobs = [i for i in items if isinstance(i, engine.CopyJob)]
    insecure = list(insecure or ()) + [h for h in images.insecure if h not in (insecure or ())]
    registry_client = connect.make_client(insecure, ca_bundles, credentials_file,
                                          timeout=timeout,
                                          concurrency=engine.concurrency(jobs),
                                          cancel=cancel)
    progress = progress or engine.Progress()
    progress.starting(len(items))
    for item in items:
        if not isinstance(item, engine.CopyJob):
            progress.image_done(item)
    with registry_client:
        results, plan = engine.Engine(registry_client, jobs=jobs,
                                      progress=progress).run(copy_jobs, dry_run=dry_run,
                                                             verify=verify)
    copied = iter(results)
    ordered = [next(copied) if isinstance(i, engine.CopyJob) else i for i in items]
    bad = len(items) - len(copy_jobs)
    plan.images += bad
    plan.images_failed += bad
    return ordered, plan
