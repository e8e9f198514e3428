"""Read upload images files (prepare's output) into copy jobs.

File shape::

    container_images:
    - imagename: docker.io/tripleopike/centos-binary-nova-api:current-tripleo
      push_destination: 192.168.24.1:8787     # optional: undercloud default
      pull_source: docker.io                   # optional, legacy (Pike)
    insecure_registries: [192.168.24.1:8787]   # optional: plain-HTTP registries

Several files merge in order; a later entry with the same ``imagename``
replaces the earlier one.
"""
import collections

from tripleo_containers import exceptions
from tripleo_containers import fileutil
from tripleo_containers.copy import engine
from tripleo_containers.registry import reference


# Keys an entry may carry: ours, Pike's pull_source, and the catalog's own
# metadata (harmless). Anything else is most likely a typo, and a typo'd
# push_destination would silently send the image to the default registry.
KNOWN_KEYS = ("imagename", "push_destination", "pull_source", "params", "services")


class ImagesFile(object):
    def __init__(self):
        self.entries = collections.OrderedDict()   # imagename -> (entry, file)
        self.insecure = []

    def add_file(self, path):
        doc = fileutil.load_yaml(path, "images file")
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise exceptions.InputError(
                "images file %s: must be a mapping with a container_images list" % path)
        images = doc.get("container_images", [])
        if images is None:
            images = []
        if not isinstance(images, list):
            raise exceptions.InputError(
                "images file %s: container_images must be a list" % path)
        for number, entry in enumerate(images, 1):
            if (not isinstance(entry, dict) or not isinstance(entry.get("imagename"), str)
                    or not entry["imagename"].strip()):
                raise exceptions.InputError(
                    "images file %s: entry %d of container_images needs an "
                    "'imagename' string" % (path, number))
            unknown = sorted(str(k) for k in entry if k not in KNOWN_KEYS)
            if unknown:
                raise exceptions.InputError(
                    "images file %s: entry %d (%s): unknown key %s (known: %s)" % (
                        path, number, entry["imagename"], ", ".join(unknown),
                        ", ".join(KNOWN_KEYS)))
            for key in ("push_destination", "pull_source"):
                if entry.get(key) is not None and not isinstance(entry[key], str):
                    raise exceptions.InputError(
                        "images file %s: entry %d (%s): %s must be a host[:port] "
                        "string" % (path, number, entry["imagename"], key))
            self.entries.pop(entry["imagename"], None)
            self.entries[entry["imagename"]] = (entry, path)
        insecure = doc.get("insecure_registries") or []
        if not isinstance(insecure, list) or not all(isinstance(h, str) for h in insecure):
            raise exceptions.InputError(
                "images file %s: insecure_registries must be a list of host:port" % path)
        for host in insecure:
            if host not in self.insecure:
                self.insecure.append(host)


def load(paths):
    images = ImagesFile()
    for path in paths:
        images.add_file(path)
    if not images.entries:
        raise exceptions.InputError(
            "images file %s has no container_images entries: nothing to upload "
            "(write one with 'container image prepare --output-images-file')"
            % ", ".join(paths))
    return images


def source_of(entry):
    pull_source = (entry.get("pull_source") or "").strip().rstrip("/")
    name = entry["imagename"].strip()
    if not pull_source:
        return reference.parse(name)
    if "/" in pull_source:  # Pike wrote registry/namespace prefixes too
        return reference.parse(pull_source + "/" + name)
    return reference.parse(name, default_registry=pull_source)


def jobs_from(images, default_destination):
    """A list in file order: a CopyJob per entry, or a failed ImageResult
    for an entry whose names do not parse.

    ``default_destination`` is a callable so the undercloud lookup only
    happens when an entry lacks push_destination.
    """
    items = []
    default = []
    for name, (entry, path) in images.entries.items():
        try:
            source = source_of(entry)
            destination = entry.get("push_destination")
            if not destination:
                if not default:
                    default.append(default_destination())
                destination = default[0]
            if entry.get("pull_source"):
                target = source.with_registry(destination)
            else:
                target = reference.push_target(name, destination)
            if not source.tag and not source.digest:
                source = source.with_tag("latest")
                target = target.with_tag("latest")
            if target.digest:
                # Pushed by tag so that the pinned image can be found by name.
                target = target.with_tag(target.tag or "latest")
            items.append(engine.CopyJob(source, target))
        except reference.InvalidReference as exc:
            items.append(engine.ImageResult(
                name, entry.get("push_destination") or "", engine.FAILED,
                error="images file %s: %s" % (path, exc)))
    return items
