"""Upload images files: the one record type prepare writes and upload reads.

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
import dataclasses
import typing

from tripleo_containers import exceptions
from tripleo_containers import fileutil
from tripleo_containers.copy import engine
from tripleo_containers.registry import reference


# Keys an entry may carry: ours, Pike's pull_source, and the catalog's own
# metadata (harmless). Anything else is most likely a typo, and a typo'd
# push_destination would silently send the image to the default registry.
KNOWN_KEYS = ("imagename", "push_destination", "pull_source", "params", "services")
_HOST_KEYS = ("push_destination", "pull_source")


@dataclasses.dataclass(frozen=True)
class ImageEntry(object):
    """One ``container_images`` entry. prepare writes these and upload
    reads them, so the file format is defined here only."""

    imagename: str
    push_destination: typing.Optional[str] = None
    pull_source: typing.Optional[str] = None

    def as_yaml(self):
        """The mapping written to the file (unset keys left out)."""
        out = {"imagename": self.imagename}
        for key in _HOST_KEYS:
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_yaml(cls, raw, where):
        """Check one parsed entry; ``where`` names it in errors
        (``images file F: entry N``)."""
        if (not isinstance(raw, dict) or not isinstance(raw.get("imagename"), str)
                or not raw["imagename"].strip()):
            raise exceptions.InputError("%s of container_images needs an 'imagename' "
                                        "string" % where)
        name = raw["imagename"]
        where = "%s (%r)" % (where, name)
        unknown = sorted(str(k) for k in raw if k not in KNOWN_KEYS)
        if unknown:
            raise exceptions.InputError("%s: unknown key %s (known: %s)" % (
                where, ", ".join(unknown), ", ".join(KNOWN_KEYS)))
        for key in _HOST_KEYS:
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise exceptions.InputError(
                    "%s: %s must be a host[:port] string" % (where, key))
        for key in ("imagename",) + _HOST_KEYS:
            # Every report line names these: a line break would forge lines.
            if any(ord(c) < 32 or c == "\x7f" for c in raw.get(key) or ""):
                raise exceptions.InputError(
                    "%s: %s contains a line break or control character; "
                    "write it on one line" % (where, key))
        return cls(name, raw.get("push_destination"), raw.get("pull_source"))


def dump(entries, insecure=()):
    """The text of an images file holding ``entries`` (ImageEntry)."""
    import yaml
    body = {"container_images": [e.as_yaml() for e in entries]}
    if insecure:
        # upload reads this so it talks plain HTTP to exactly these registries
        body["insecure_registries"] = list(insecure)
    return yaml.safe_dump(body, default_flow_style=False, sort_keys=False)


class Loaded(typing.NamedTuple):
    entry: ImageEntry
    path: str
    number: int

    def __str__(self):
        return "%s entry %d (%s)" % (self.path, self.number, self.entry.imagename)


class ImagesFile(object):
    def __init__(self):
        self.entries = collections.OrderedDict()   # imagename -> Loaded
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
        for number, raw in enumerate(images, 1):
            entry = ImageEntry.from_yaml(raw, "images file %s: entry %d" % (path, number))
            self.entries.pop(entry.imagename, None)
            self.entries[entry.imagename] = Loaded(entry, path, number)
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
    pull_source = (entry.pull_source or "").strip().rstrip("/")
    name = entry.imagename.strip()
    if not pull_source:
        return reference.parse(name)
    if "/" in pull_source:  # Pike wrote registry/namespace prefixes too
        return reference.parse(pull_source + "/" + name)
    return reference.parse(name, default_registry=pull_source)


def _job_of(entry, default_destination):
    source = source_of(entry)
    destination = entry.push_destination or default_destination()
    if entry.pull_source:
        target = source.with_registry(destination)
    else:
        target = reference.push_target(entry.imagename, destination)
    if not source.tag and not source.digest:
        source = source.with_tag("latest")
        target = target.with_tag("latest")
    if target.digest:
        # Pushed by tag so that the pinned image can be found by name.
        target = target.with_tag(target.tag or "latest")
    return engine.CopyJob(source, target)


def _conflicts(loaded_jobs):
    """{index: error} for jobs whose destination another entry with a
    different source also pushes to: whichever ran last would silently win."""
    by_target = collections.OrderedDict()
    for index, (loaded, job) in enumerate(loaded_jobs):
        by_target.setdefault(str(job.destination), []).append((index, loaded, job))
    out = {}
    for target, users in by_target.items():
        if len({str(job.source) for _, _, job in users}) < 2:
            continue
        for index, loaded, _ in users:
            others = [str(o) for _, o, _ in users if o is not loaded]
            out[index] = (
                "images file %s and %s push different images to %s; not copied "
                "(give one of them another push_destination, tag or name)" % (
                    loaded, " and ".join(others), target))
    return out


def jobs_from(images, default_destination):
    """A list in file order: a CopyJob per entry, or a failed ImageResult
    for an entry whose names do not parse or whose destination another
    entry's different image also claims.

    ``default_destination`` is a callable so the undercloud lookup only
    happens when an entry lacks push_destination.
    """
    default = []

    def destination():
        if not default:
            default.append(default_destination())
        return default[0]

    items, parsed, positions = [], [], []
    for name, loaded in images.entries.items():
        try:
            job = _job_of(loaded.entry, destination)
        except reference.InvalidReference as exc:
            items.append(engine.ImageResult(
                name, loaded.entry.push_destination or "", engine.FAILED,
                error="images file %s: %s" % (loaded.path, exc)))
            continue
        parsed.append((loaded, job))
        positions.append(len(items))
        items.append(job)
    for index, error in _conflicts(parsed).items():
        job = parsed[index][1]
        items[positions[index]] = engine.ImageResult(
            str(job.source), str(job.destination), engine.FAILED, error=error)
    return items
