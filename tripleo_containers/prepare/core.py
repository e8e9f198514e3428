"""prepare's one entry point: options in, the images list and Heat params out."""
import re

from tripleo_containers import exceptions
from tripleo_containers.prepare import catalog as catalog_mod
from tripleo_containers.prepare import environments
from tripleo_containers.prepare import services as services_mod
from tripleo_containers.prepare import undercloud
from tripleo_containers.registry import reference

INSECURE_PARAM = "DockerInsecureRegistryAddress"
SCHEMES = ("docker", "container")
STRATEGY_KEYS = ("set", "includes", "excludes", "push_destination", "tag_from_label")


class Request(object):
    """Everything prepare needs; commands fill it from their arguments."""

    def __init__(self, template_file=None, values=None, includes=(), excludes=(),
                 push_destination=None, push_destination_tls=False,
                 insecure_registries=(), env_files=(), env_dirs=(),
                 roles_file=None, scheme="docker"):
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
        self.scheme = scheme


class Result(object):
    """images: [{imagename, push_destination?}]; params: {name: image}."""

    def __init__(self, images, params, insecure, env_files, services, sources=()):
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
    if not isinstance(value, str) or not reference.valid_host(value):
        raise exceptions.InputError(
            "%s %r is not a registry address; use HOST:PORT, e.g. "
            "192.168.24.1:8787 ([v6addr]:8787 for IPv6)" % (origin, value))
    return value


def _push_destination(value, origin):
    if value is True:
        return undercloud.default_push_destination()
    if value in (None, False):
        return None
    return registry_host(value, origin)


def rename_param(name, scheme):
    """Docker<X>Image -> Container<X>Image for Train-and-later templates."""
    if scheme == "container" and name.startswith("Docker") and name != INSECURE_PARAM:
        return "Container" + name[len("Docker"):]
    return name


class Strategy(object):
    def __init__(self, values, includes, excludes, push_destination, origin):
        self.values = values
        self.includes = includes
        self.excludes = excludes
        self.push_destination = push_destination
        self.origin = origin

    def keeps(self, imagename):
        if self.includes and not any(p.search(imagename) for p in self.includes):
            return False
        return not any(p.search(imagename) for p in self.excludes)


def _strategies(raw, request, catalog):
    """ContainerImagePrepare entries (or one implicit entry) as Strategies."""
    origin = "ContainerImagePrepare"
    if raw is None:
        raw = [{}]
    elif not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise exceptions.InputError(
            "parameter_defaults.ContainerImagePrepare must be a list of mappings "
            "(each with set/includes/excludes/push_destination), got %s"
            % type(raw).__name__)
    out = []
    for i, entry in enumerate(raw, 1):
        where = "%s entry %d" % (origin, i)
        unknown = sorted(set(entry) - set(STRATEGY_KEYS))
        if unknown:
            raise exceptions.InputError(
                "%s: unknown key %s; known keys: %s"
                % (where, ", ".join(unknown), ", ".join(STRATEGY_KEYS)))
        if entry.get("tag_from_label"):
            raise exceptions.InputError(
                "%s: tag_from_label is not supported by this version; set an "
                "explicit tag with set: {tag: ...}" % where)
        values = dict(request.values)
        entry_set = entry.get("set") or {}
        if not isinstance(entry_set, dict):
            raise exceptions.InputError("%s: set must be a mapping" % where)
        catalog.check_keys(entry_set, "%s set" % where)
        values.update(entry_set)
        for key in ("includes", "excludes"):
            if not isinstance(entry.get(key) or [], list):
                raise exceptions.InputError("%s: %s must be a list of regexes" % (where, key))
        push = entry.get("push_destination")
        out.append(Strategy(
            values,
            compile_patterns(entry.get("includes") or [], "%s includes" % where),
            compile_patterns(entry.get("excludes") or [], "%s excludes" % where),
            _push_destination(push, "%s push_destination" % where)
            if push is not None else None,
            where))
    return out


def prepare(request):
    """Render, filter and map the catalog; returns a Result. No I/O but reads."""
    if request.scheme not in SCHEMES:
        raise exceptions.InputError(
            "parameter scheme %r: choose one of %s" % (request.scheme, ", ".join(SCHEMES)))
    catalog = catalog_mod.Catalog(request.template_file)
    catalog.check_keys(request.values, "--set")
    includes = compile_patterns(request.includes, "--include")
    excludes = compile_patterns(request.excludes, "--exclude")
    cli_push = _push_destination(request.push_destination, "--push-destination")
    insecure = {registry_host(h, "--insecure-registry") for h in request.insecure_registries}

    env, files = environments.load(request.env_files, request.env_dirs)
    # The service filter needs to know what runs in containers; environments
    # that containerize nothing (say, only ContainerImagePrepare) select by
    # their strategies alone instead of silently selecting no image.
    wanted = None
    containerized = services_mod.containerized_services(env)
    if files or request.roles_file:
        roles = services_mod.load_roles(
            request.roles_file or services_mod.default_roles_file())
        if containerized:
            wanted = services_mod.enabled_services(env, roles) & containerized
    params_env = env.get("parameter_defaults") or {}
    strategies = _strategies(params_env.get("ContainerImagePrepare"), request, catalog)

    images, params, sources = {}, {}, []
    for strategy in strategies:
        values = dict(strategy.values)
        if values.get("neutron_driver") is None and wanted is not None:
            values["neutron_driver"] = services_mod.neutron_driver(wanted)
        push = strategy.push_destination or cli_push
        if push and not request.push_destination_tls:
            insecure.add(push)
        sources.append((dict(catalog.defaults, **values), push))
        for entry in catalog.render(values):
            name = entry["imagename"]
            if wanted is not None and not wanted.intersection(entry["services"]):
                continue
            if includes and not any(p.search(name) for p in includes):
                continue
            if any(p.search(name) for p in excludes) or not strategy.keeps(name):
                continue
            images.pop(name, None)  # re-insert: later strategies win
            images[name] = push
            target = str(reference.push_target(name, push)) if push else name
            for param in entry["params"]:
                params[rename_param(param, request.scheme)] = target

    if not images:
        raise exceptions.InputError(
            "no images selected: check --include/--exclude, the "
            "ContainerImagePrepare entries and the roles' services")
    used = {reference.parse(v).registry for v in params.values()}
    return Result(
        images=[dict(imagename=n, **({"push_destination": p} if p else {}))
                for n, p in images.items()],
        params=params,
        insecure=sorted(used & insecure),
        env_files=files,
        services=wanted,
        sources=sources)
