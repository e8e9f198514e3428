"""Day-two registry operations: list, show, delete, tag discovery, digests.

Built on the shared registry Client/Transport (one per run, so every
request to a registry reuses its ping, connection pool and tokens).  Each
operation asks for exactly what it needs: show is one manifest GET (plus the
chosen child for a list) and one config GET; tag discovery is the same two
GETs and one HEAD of the discovered tag, never the whole tag list; digest
resolution is one HEAD per image.  Batches run on a bounded thread pool.
"""
import concurrent.futures
import json
import logging
import re

from tripleo_containers import exceptions
from tripleo_containers.registry import errors
from tripleo_containers.registry import reference

LOG = logging.getLogger(__name__)

DEFAULT_PLATFORM = "linux/amd64"
# Repositories per prefetched token: keeps the token URL short (~3 KB).
TOKEN_SCOPES = 50


class LabelError(exceptions.InputError):
    """The image has no such label, or the labels make no valid tag."""


def parse_ref(text, what="image"):
    """Reference of a user-given image; a bad one is an InputError."""
    try:
        return reference.parse(text)
    except reference.InvalidReference as exc:
        raise exceptions.InputError("%s: %s" % (what, exc))


def _pool(jobs, count):
    return concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(jobs, count)))


# -- reading one image ---------------------------------------------------------


def _platform_of(desc):
    plat = desc.get("platform") or {}
    out = "%s/%s" % (plat.get("os", "?"), plat.get("architecture", "?"))
    if plat.get("variant"):
        out += "/" + plat["variant"]
    return out


def pick_child(manifest, ref, platform=DEFAULT_PLATFORM):
    """The descriptor of ``platform`` in a manifest list/index."""
    entries = manifest.doc.get("manifests") or []
    for entry in entries:
        if _platform_of(entry) == platform or (
                platform.count("/") == 1 and
                _platform_of(entry).startswith(platform + "/")):
            return entry
    raise errors.NotFound("image %s has no %s variant (it has: %s)" % (
        ref, platform, ", ".join(_platform_of(e) for e in entries) or "none"))


def get_config(client, ref, manifest):
    """The config blob of an image manifest, digest-verified, as a dict."""
    data = client.get_config(ref, manifest)
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        raise errors.UnsupportedManifest("config blob of %s is not JSON" % ref)


def read_image(client, ref, platform=DEFAULT_PLATFORM):
    """(top manifest, image manifest, config) of ``ref`` for ``platform``."""
    top = client.get_manifest(ref)
    image = top
    if top.is_list:
        child = pick_child(top, ref, platform)
        image = client.get_manifest(ref.with_digest(child["digest"]))
    return top, image, get_config(client, ref, image)


def labels_of(config):
    return dict(((config or {}).get("config") or {}).get("Labels") or {})


def show(client, ref, platform=DEFAULT_PLATFORM):
    """What `image show` displays, as an ordered dict."""
    top, image, config = read_image(client, ref, platform)
    layers = [{"digest": l.get("digest"), "size": l.get("size"),
               "media_type": l.get("mediaType")}
              for l in image.doc.get("layers") or []]
    config_size = (image.doc.get("config") or {}).get("size") or 0
    if top.is_list:
        platforms = [_platform_of(m) for m in top.doc.get("manifests") or []]
    else:
        platforms = ["%s/%s" % (config.get("os", "?"), config.get("architecture", "?"))]
    return dict([
        ("name", str(ref)),
        ("digest", top.digest),
        ("media_type", top.media_type),
        ("platforms", platforms),
        ("platform_digest", image.digest),
        ("created", config.get("created")),
        ("labels", labels_of(config)),
        ("layers", layers),
        ("size", config_size + sum(l["size"] or 0 for l in layers)),
    ])


# -- tag discovery ---------------------------------------------------------------


def tag_from_labels(labels, label_format, ref=None):
    """The tag that ``label_format`` makes from ``labels``.

    ``label_format`` is a label name (``version``) or a format over label
    names (``{version}-{release}``); label names may contain dots and dashes.
    """
    fields = re.findall(r"\{([^{}]*)\}", label_format)
    names = fields if fields else [label_format]
    missing = [n for n in names if n not in labels]
    if missing:
        raise LabelError("image %s has no label %s (tag from label %r); its labels: %s" % (
            ref, ", ".join(repr(n) for n in missing), label_format,
            ", ".join(sorted(labels)) or "none"))
    if fields:
        tag = re.sub(r"\{([^{}]*)\}", lambda m: str(labels[m.group(1)]), label_format)
    else:
        tag = str(labels[label_format])
    if not reference._TAG_RE.match(tag):
        raise LabelError("image %s: labels make the tag %r from %r, which is not a "
                         "valid tag (letters, digits, '_', '.', '-')" % (ref, tag, label_format))
    return tag


class Discovered(object):
    """ref: the image asked about; tag: the discovered tag; digest: the
    manifest digest of ref:tag (the HEAD that proved it exists)."""

    def __init__(self, ref, tag, digest):
        self.ref = ref
        self.tag = tag
        self.digest = digest

    @property
    def tagged(self):
        return self.ref.with_tag(self.tag)


def discover_tag(client, ref, label_format, platform=DEFAULT_PLATFORM):
    """Discover ``ref``'s versioned tag from its config labels."""
    top, _, config = read_image(client, ref, platform)
    tag = tag_from_labels(labels_of(config), label_format, ref)
    tagged = ref.with_tag(tag)
    desc = top if tagged == ref else client.head_manifest(tagged)
    if desc is None:
        raise errors.NotFound(
            "image %s: its labels give the tag %r but %s does not exist; push the "
            "image under that tag or use another label" % (ref, tag, tagged))
    if desc.digest and desc.digest != top.digest:
        LOG.warning("%s is %s but %s is %s: the discovered tag points at another "
                    "build", ref, top.digest, tagged, desc.digest)
    return Discovered(ref, tag, desc.digest or top.digest)


def run_batch(func, items, jobs=8, client=None):
    """{item: result} and {item: error} of ``func(item)`` on a bounded pool;
    every item is tried even when some fail.  With ``client``, each distinct
    registry of the items (References) is pinged once first, so a registry
    that does not answer costs one round of retries, not one per image."""
    results, failures, dead = {}, {}, {}
    items = list(dict.fromkeys(items))
    if not items:
        return results, failures
    if client is not None:
        for host in dict.fromkeys(getattr(i, "api_host", None) for i in items):
            try:
                if host:
                    client.transport.ping(host)
            except (errors.Unreachable, errors.TLSFailure) as exc:
                dead[host] = exc
        prefetch_tokens(client, [i for i in items if hasattr(i, "repository") and
                                 getattr(i, "api_host", None) not in dead])

    def guarded(item):
        # A registry that did not answer (or failed TLS) once will not for
        # the next image either: fail its remaining items without retrying.
        host = getattr(item, "api_host", None)
        if host in dead:
            raise dead[host]
        try:
            return func(item)
        except (errors.Unreachable, errors.TLSFailure) as exc:
            if host:
                dead.setdefault(host, exc)
            raise

    with _pool(jobs, len(items)) as pool:
        futures = {pool.submit(guarded, item): item for item in items}
        for fut in concurrent.futures.as_completed(futures):
            item = futures[fut]
            try:
                results[item] = fut.result()
            except exceptions.Error as exc:
                failures[item] = exc
    return results, failures


def prefetch_tokens(client, refs, per_token=TOKEN_SCOPES):
    """Ask a Bearer registry once (per ``per_token`` repositories) for a
    token that pulls from all of ``refs``: the batch's requests reuse it
    instead of costing one token request per repository.  No-op for other
    registries; a failure is left to the batch's own requests to report."""
    by_host = {}
    for ref in refs:
        by_host.setdefault(ref.api_host, {})["repository:%s:pull" % ref.repository] = 1
    for host, scopes in by_host.items():
        scopes = list(scopes)
        if len(scopes) < 2:
            continue
        for start in range(0, len(scopes), per_token):
            try:
                client.transport.prefetch_token(host, scopes[start:start + per_token])
            except exceptions.Error as exc:
                LOG.debug("token prefetch for %s: %s", host, exc)
                break


def raise_failures(failures, total, what):
    """One error for a batch: the count, then the first failures' messages."""
    if not failures:
        return
    messages = {}
    for _, exc in sorted(failures.items(), key=lambda kv: str(kv[0])):
        messages[str(exc)] = messages.get(str(exc), 0) + 1
    shown = ["%s%s" % (m, " (%d times)" % n if n > 1 else "")
             for m, n in list(messages.items())[:3]]
    more = " (and %d more)" % (len(messages) - 3) if len(messages) > 3 else ""
    raise exceptions.Error("%d of %d %s failed: %s%s" % (
        len(failures), total, what, "; ".join(shown), more))


def discover_tags(client, refs_formats, jobs=8):
    """{ref: Discovered} for {ref: label format}; raises after the batch."""
    results, failures = run_batch(
        lambda ref: discover_tag(client, ref, refs_formats[ref]), refs_formats, jobs,
        client)
    raise_failures(failures, len(refs_formats), "tag discoveries")
    return results


# -- digests -------------------------------------------------------------------------


def resolve_digest(client, ref):
    """The manifest digest ``ref`` names now (one HEAD)."""
    desc = client.head_manifest(ref)
    if desc is None:
        raise errors.NotFound("image %s not found" % ref)
    if not desc.digest:
        # A registry that omits Docker-Content-Digest: hash the bytes.
        return client.get_manifest(ref).digest
    return desc.digest


def resolve_digests(client, refs, jobs=16, what="digest resolutions"):
    results, failures = run_batch(lambda ref: resolve_digest(client, ref), refs, jobs,
                                  client)
    raise_failures(failures, len(set(refs)), what)
    return results


# -- listing -------------------------------------------------------------------------


def list_images(client, registry, page_size=100, jobs=8, digests=False):
    """[(repository, tag, digest or None)] of every repository of ``registry``.

    One paginated _catalog walk, then the repositories' tag lists (each
    paginated) concurrently, then with ``digests`` one HEAD per tag.
    """
    repos = client.catalog(registry, page_size=page_size)
    prefetch_tokens(client, [reference.Reference(registry, r) for r in repos])

    def tags(repo):
        return client.list_tags(reference.Reference(registry, repo), page_size=page_size)

    tag_lists, failures = run_batch(tags, repos, jobs)
    raise_failures(failures, len(repos), "tag listings")
    rows = []
    for repo in sorted(repos):
        names = sorted(tag_lists[repo] or [])
        rows.extend((repo, t) for t in names)
        if not names:
            rows.append((repo, None))
    found = {}
    if digests:
        refs = [reference.Reference(registry, r, t) for r, t in rows if t]
        found, failures = run_batch(lambda ref: resolve_digest(client, ref), refs, jobs * 2)
        raise_failures(failures, len(refs), "digest lookups")
    return [(r, t, found.get(reference.Reference(registry, r, t)) if t else None)
            for r, t in rows]


# -- delete ----------------------------------------------------------------------------


def delete(client, ref, digest=None):
    """Delete the manifest ``ref`` names, by digest; returns the digest.

    A tag is first resolved with a HEAD (unless ``digest`` is given): the
    API deletes manifests, and with them every tag that points at them.
    """
    digest = digest or ref.digest or resolve_digest(client, ref)
    return client.delete_manifest(ref, digest)
