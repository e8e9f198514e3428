"""prepare's one entry point: options in, the images list and Heat params out."""
import logging
import re

from tripleo_containers import exceptions
from tripleo_containers.prepare import catalog as catalog_mod
from tripleo_containers.prepare import environments
from tripleo_containers.prepare import services as services_mod
from tripleo_containers.registry import undercloud
from tripleo_containers.registry import reference

LOG = logging.getLogger(__name__)

INSECURE_PARAM = "DockerInsecureRegistryAddress"
SCHEMES = ("docker", "container")
PIN_MODES = ("source", "destination")
STRATEGY_KEYS = ("set", "includes", "excludes", "push_destination", "tag_from_label")
# Train's ContainerImagePrepare keys for image modification with an Ansible
# role during upload, and its deprecated pull_source: refused by name.
UNSUPPORTED_KEYS = {
    "modify_role": "image modification with Ansible",
    "modify_vars": "image modification with Ansible",
    "modify_only_with_labels": "image modification with Ansible",
    "modify_only_with_source": "image modification with Ansible",
    "modify_append_tag": "image modification with Ansible",
    "pull_source": "pull_source (give the source registry in set.namespace)",
}
RELEASES = tuple(sorted(catalog_mod.RELEASES))


class Request(object):
    """Everything prepare needs; commands fill it from their arguments."""

    def __init__(self, template_file=None, values=None, includes=(), excludes=(),
                 push_destination=None, push_destination_tls=False,
                 insecure_registries=(), env_files=(), env_dirs=(),
                 roles_file=None, scheme=None, tag_from_label=None,
                 pin_digests=None, ca_bundles=(), credentials_file=None,
                 client=None, release=None):
        self.template_file = template_file
        self.values = dict(values or {})
        self.includes = list(includes or ())
        self.excludes = list(excludes or ())
        self.push_destination = push_destination  # None, True or "host:port"
        self.push_destination_tls = push_destination_tls
        self.insecure_registries = list(insecure_registries or ())
        self.env_files = list(env_files or ())
        self.env_dirs = list(env_dirs or ())
        self.roles_file = roles_file
        self.scheme = scheme  # None: the release's own
        # None: train when the environments hold a ContainerImagePrepare
        # (a Train concept), else pike
        self.release = release
        # Registry reads (tag discovery, digest pinning) happen only when
        # one of these is asked for; ``client`` lets a caller share one.
        self.tag_from_label = tag_from_label
        self.pin_digests = pin_digests
        self.ca_bundles = list(ca_bundles or ())
        self.credentials_file = credentials_file
        self.client = client


class Result(object):
    """images: [ImageEntry]; params: {name: image}."""

    def __init__(self, images, params, insecure, env_files, services, sources=(),
                 unpinned=(), release=catalog_mod.DEFAULT_RELEASE):
        self.release = release
        self.unpinned = sorted(unpinned)  # params left on a tag by --pin-digests
        self.sources = list(sources)  # (values, push destination) per strategy used
        self.images = images
        self.params = params
        self.insecure = insecure
        self.env_files = env_files
        self.services = services


def compile_patterns(patterns, option):
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except (re.error, TypeError) as e:
            raise exceptions.InputError(
                "%s %r is not a valid regular expression: %s" % (option, p, e))
    return out


def registry_host(value, origin):
    """Validate a host[:port] given for a registry."""
    try:
        return reference.parse_registry(value, origin)
    except reference.InvalidReference as exc:
        raise exceptions.InputError(str(exc))


def _push_destination(value, origin, local_registry=None):
    if value is True:
        # Train: LocalContainerRegistry (the undercloud's address) when the
        # environments give it, else the undercloud registry found here
        if local_registry:
            return undercloud.format_host(str(local_registry))
        return undercloud.default_push_destination()
    if value in (None, False):
        return None
    return registry_host(value, origin)


def separated(values):
    """Pike's catalog and Train's kolla_builder add the '-' a name prefix or
    suffix lacks (``os`` -> ``os-aodh-api``, ``foo`` -> ``aodh-api-foo``);
    whatever the values came from (options, --set, a strategy's set)."""
    out = dict(values)
    prefix, suffix = out.get("name_prefix"), out.get("name_suffix")
    if isinstance(prefix, str) and prefix and not prefix.endswith("-"):
        out["name_prefix"] = prefix + "-"
    if isinstance(suffix, str) and suffix and not suffix.startswith("-"):
        out["name_suffix"] = "-" + suffix
    return out


def rename_param(name, scheme):
    """Docker<X>Image <-> Container<X>Image: Pike's templates use the first,
    Train-and-later ones the second (a pure prefix swap)."""
    if name == INSECURE_PARAM or not name.endswith("Image"):
        return name
    if scheme == "container" and name.startswith("Docker"):
        return "Container" + name[len("Docker"):]
    if scheme == "docker" and name.startswith("Container"):
        return "Docker" + name[len("Container"):]
    return name


def _image_base(name):
    for prefix in ("Docker", "Container"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


class Strategy(object):
    def __init__(self, values, includes, excludes, push_destination, origin,
                 tag_from_label=None):
        self.tag_from_label = tag_from_label
        self.values = values
        self.includes = includes
        self.excludes = excludes
        self.push_destination = push_destination
        self.origin = origin

    def keeps(self, imagename):
        return _selected(imagename, self.includes, self.excludes)


def _selected(imagename, includes, excludes):
    """Kept by include/exclude regexes: matches an include (if any), no exclude."""
    if includes and not any(p.search(imagename) for p in includes):
        return False
    return not any(p.search(imagename) for p in excludes)


def neutron_driver_from(params_env):
    """Train's rule: the driver follows NeutronMechanismDrivers, ovn by default."""
    drivers = params_env.get("NeutronMechanismDrivers")
    if drivers is None:
        return "ovn"
    if isinstance(drivers, str):
        drivers = drivers.split(",")
    drivers = [str(d).strip() for d in drivers or ()]
    if "opendaylight_v2" in drivers:
        return "odl"
    if "ovn" in drivers:
        return "ovn"
    return "other"


def infer_release(request, env):
    if request.release is not None:
        if request.release not in RELEASES:
            raise exceptions.InputError("--release %r: choose one of %s"
                                        % (request.release, ", ".join(RELEASES)))
        return request.release
    params_env = env.get("parameter_defaults") or {}
    return "train" if "ContainerImagePrepare" in params_env else catalog_mod.DEFAULT_RELEASE


def _strategies(raw, request, catalog, local_registry=None, source=None):
    """ContainerImagePrepare entries (or one implicit entry) as Strategies;
    ``source``: the environment file they come from, for messages."""
    origin = ("environment file %s: " % source if source else "") + "ContainerImagePrepare"
    if raw is None:
        raw = [{}]
    elif not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise exceptions.InputError(
            "%s must be a list of mappings (each with set/includes/excludes/"
            "push_destination), got %s" % (origin, type(raw).__name__))
    out = []
    for i, entry in enumerate(raw, 1):
        where = "%s entry %d" % (origin, i)
        refused = sorted(set(entry) & set(UNSUPPORTED_KEYS))
        if refused:
            raise exceptions.InputError(
                "%s: %s is not supported by tripleo-containers (%s); remove "
                "it and build modified images separately" % (
                    where, ", ".join(refused), UNSUPPORTED_KEYS[refused[0]]))
        unknown = sorted(set(entry) - set(STRATEGY_KEYS))
        if unknown:
            raise exceptions.InputError(
                "%s: unknown key %s; known keys: %s"
                % (where, ", ".join(unknown), ", ".join(STRATEGY_KEYS)))
        label = entry["tag_from_label"] if "tag_from_label" in entry \
            else request.tag_from_label
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise exceptions.InputError(
                "%s: tag_from_label must be a label name or a format such as "
                "'{version}-{release}'" % where)
        values = dict(request.values)
        entry_set = entry.get("set") or {}
        if not isinstance(entry_set, dict):
            raise exceptions.InputError("%s: set must be a mapping" % where)
        if entry_set.get("tag"):
            # kolla_builder: a tag the entry sets is used as it is
            label = None
        catalog.check_keys(entry_set, "%s set" % where)
        values.update(entry_set)
        for key in ("includes", "excludes"):
            if not isinstance(entry.get(key) or [], list):
                raise exceptions.InputError("%s: %s must be a list of regexes" % (where, key))
        push = entry.get("push_destination")
        entry_includes = compile_patterns(entry.get("includes") or [], "%s includes" % where)
        entry_excludes = compile_patterns(entry.get("excludes") or [], "%s excludes" % where)
        out.append(Strategy(
            values, entry_includes,
            # kolla_builder ignores an entry's excludes when it has includes
            [] if entry_includes else entry_excludes,
            _push_destination(push, "%s push_destination" % where, local_registry)
            if push is not None else None,
            where, label))
    return out


def prepare(request):
    """Render, filter and map the catalog; returns a Result. No I/O but reads."""
    if request.scheme not in SCHEMES + (None,):
        raise exceptions.InputError(
            "parameter scheme %r: choose one of %s" % (request.scheme, ", ".join(SCHEMES)))
    env, files = environments.load(request.env_files, request.env_dirs)
    release = infer_release(request, env)
    scheme = request.scheme or catalog_mod.RELEASES[release]["scheme"]
    catalog = catalog_mod.Catalog(request.template_file, release)
    catalog.check_keys(request.values, "--set")
    includes = compile_patterns(request.includes, "--include")
    excludes = compile_patterns(request.excludes, "--exclude")
    cli_push = _push_destination(request.push_destination, "--push-destination")
    insecure = {registry_host(h, "--insecure-registry") for h in request.insecure_registries}

    params_env = env.get("parameter_defaults") or {}
    wanted = _wanted_services(request, env, files, release)
    raw = params_env.get("ContainerImagePrepare")
    source = environments.last_setting(files, "ContainerImagePrepare") \
        if raw is not None else None
    strategies = _strategies(raw, request, catalog,
                             params_env.get("LocalContainerRegistry"), source)

    images, labels, param_image, sources = {}, {}, {}, []
    for strategy in strategies:
        values = separated(strategy.values)
        if release == "train":
            if values.get("neutron_driver") is None or \
                    "NeutronMechanismDrivers" in params_env:
                values["neutron_driver"] = neutron_driver_from(params_env)
        elif values.get("neutron_driver") is None and wanted is not None:
            values["neutron_driver"] = services_mod.neutron_driver(wanted)
        push = strategy.push_destination or cli_push
        if push and not request.push_destination_tls:
            insecure.add(push)
        sources.append((dict(catalog.defaults, **values), push))
        for entry in catalog.render(values):
            name = entry["imagename"]
            if wanted is not None and not wanted.intersection(entry["services"]):
                continue
            if not (_selected(name, includes, excludes) and strategy.keeps(name)):
                continue
            images.pop(name, None)  # re-insert: later strategies win
            images[name] = push
            labels.pop(name, None)
            if strategy.tag_from_label:
                labels[name] = strategy.tag_from_label
            for param in entry["params"]:
                param_image[param] = name

    if not images:
        raise exceptions.InputError(
            "no images selected: check --include/--exclude, the "
            "ContainerImagePrepare entries and the roles' services")
    if request.pin_digests not in (None,) + PIN_MODES:
        raise exceptions.InputError("--pin-digests %r: choose one of %s" % (
            request.pin_digests, ", ".join(PIN_MODES)))
    final, pins, unpinned = _resolve(request, images, labels, param_image, insecure)
    params = {}
    for param, name in param_image.items():
        push = images[name]
        target = str(reference.push_target(final[name], push)) if push else final[name]
        if name in pins and param not in unpinned:
            target = str(reference.parse(target).with_digest(pins[name]))
        params[rename_param(param, scheme)] = target
    used = {reference.parse(v).registry for v in params.values()}
    from tripleo_containers.copy import images_file
    return Result(
        images=[images_file.ImageEntry(final[n], p or None) for n, p in images.items()],
        unpinned=[rename_param(p, scheme) for p in unpinned],
        params=params,
        insecure=sorted(used & insecure),
        env_files=files,
        services=wanted,
        sources=sources,
        release=release)


def _wanted_services(request, env, files, release):
    """The services whose images are kept, or None to keep every image.

    Pike (tripleoclient 7.x): enabled services that the environments map to
    a containerized template; environments that containerize nothing (say,
    only a ContainerImagePrepare) select by their strategies alone instead of
    silently selecting no image. Train (tripleo-common 11.x): every enabled
    service not mapped to OS::Heat::None, all of its templates being
    containerized.
    """
    if not (files or request.roles_file):
        return None
    roles = services_mod.load_roles(
        request.roles_file or catalog_mod.default_roles_file(release)
        or services_mod.default_roles_file())
    enabled = services_mod.enabled_services(env, roles)
    if release == "train":
        registry = env.get("resource_registry") or {}
        return {s for s in enabled if registry.get(s) != "OS::Heat::None"}
    containerized = services_mod.containerized_services(env)
    return enabled & containerized if containerized else None


def pacemaker_params():
    """Image parameters that pacemaker bundle templates cut at their last ':'
    to append ':pcmklatest'; a name@sha256:... value would break there."""
    import glob
    import os
    from tripleo_containers import data
    cut = re.compile(r'rightSplit\(separator => ":"[^\n]*\n\s*data:\s*\n\s*'
                     r'get_param:\s*(\w+)')
    out = set()
    root = data.path("heat-templates")
    for path in glob.glob(os.path.join(root, "**", "*.yaml"), recursive=True):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if "pcmklatest" in text:
            out.update(cut.findall(text))
    return out


def _resolve(request, images, labels, param_image, insecure):
    """Registry reads for tag_from_label and --pin-digests.

    Returns ({catalog name: final name}, {catalog name: digest}, unpinned
    params).  Tag discovery reads each image's manifest and config and HEADs
    the discovered tag, whose digest is also the source pin.
    """
    final = dict((n, n) for n in images)
    if not labels and not request.pin_digests:
        return final, {}, set()
    from tripleo_containers.registry import connect, ops
    client = request.client or connect.make_client(
        sorted(insecure), request.ca_bundles, request.credentials_file)
    try:
        refs = dict((n, reference.parse(n)) for n in labels)
        found = ops.discover_tags(client, dict((refs[n], f) for n, f in labels.items()))
        source_digests = {}
        for name in labels:
            hit = found[refs[name]]
            final[name] = str(hit.tagged)
            source_digests[name] = hit.digest
        if not request.pin_digests:
            return final, {}, set()
        if request.pin_digests == "source":
            todo = dict((n, reference.parse(final[n])) for n in images
                        if n not in source_digests)
            what = "source digest lookups"
        else:
            source_digests = {}
            todo = dict((n, reference.push_target(final[n], p) if p else
                         reference.parse(final[n])) for n, p in images.items())
            what = ("digest lookups at the push destination (upload the images "
                    "before pinning there)")
        digests = ops.resolve_digests(client, list(todo.values()), what=what)
        pins = dict(source_digests, **dict((n, digests[r]) for n, r in todo.items()))
    finally:
        if request.client is None:
            client.close()
    cut = {_image_base(p) for p in pacemaker_params()}
    unpinned = {p for p in param_image if _image_base(p) in cut}
    if unpinned:
        LOG.warning("not pinned (pacemaker bundles append :pcmklatest to a name:tag): %s",
                    ", ".join(sorted(unpinned)))
    return final, pins, unpinned
