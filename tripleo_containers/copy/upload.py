"""The upload use case: images files in, per-image results out."""
import logging

from tripleo_containers.copy import engine
from tripleo_containers.copy import images_file
from tripleo_containers.registry import connect

LOG = logging.getLogger(__name__)


def _default_destination():
    from tripleo_containers.registry import undercloud
    return undercloud.default_push_destination()


def upload(config_files, jobs=4, dry_run=False, insecure=(), ca_bundles=(),
           credentials_file=None, progress=None, default_destination=None,
           timeout=None, cancel=None):
    """Copy every image of ``config_files``; returns ([ImageResult], Plan).

    Raises InputError for unusable input (files, options); per-image
    problems are results with status 'failed'. Setting ``cancel`` (a
    threading.Event) ends the run early: unfinished images are
    'interrupted'.
    """
    images = images_file.load(config_files)
    items = images_file.jobs_from(
        images, default_destination or _default_destination)
    copy_jobs = [i for i in items if isinstance(i, engine.CopyJob)]
    insecure = list(insecure or ()) + [h for h in images.insecure if h not in (insecure or ())]
    registry_client = connect.make_client(insecure, ca_bundles, credentials_file,
                                          timeout=timeout,
                                          concurrency=jobs + engine.META_JOBS + 4,
                                          cancel=cancel)
    progress = progress or engine.Progress()
    progress.starting(len(items))
    for item in items:
        if not isinstance(item, engine.CopyJob):
            progress.image_done(item)
    with registry_client:
        results, plan = engine.Engine(registry_client, jobs=jobs,
                                      progress=progress).run(copy_jobs, dry_run=dry_run)
    copied = iter(results)
    ordered = [next(copied) if isinstance(i, engine.CopyJob) else i for i in items]
    bad = len(items) - len(copy_jobs)
    plan.images += bad
    plan.images_failed += bad
    return ordered, plan
