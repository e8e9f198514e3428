"""The validator: environments -> enabled service templates -> image parameters."""
import os

from tripleo_containers import data
from tripleo_containers import exceptions
from tripleo_containers.prepare import catalog
from tripleo_containers.prepare import environments
from tripleo_containers.prepare import services
from tripleo_containers.validate import findings
from tripleo_containers.validate import images
from tripleo_containers.validate import supplied
from tripleo_containers.validate import templates


def _parse_environments(files):
    """Parse each file, report the ones deploy would refuse, merge the rest."""
    merged, out = {}, []
    for path in files:
        try:
            env = environments.parse_file(path)
        except exceptions.InputError as e:
            check = ("environment-section" if "wrong section" in str(e)
                     else "environment-format")
            out.append(findings.error(check, path, _strip_prefix(str(e), path)
                                      + _yaml_line(path)))
            continue
        for target in templates.registry_files(env.get("resource_registry")):
            if not os.path.exists(target) and not templates.plan_rendered(target):
                # heatclient fetches every file of every environment, even
                # one a later environment overrides, so this fails the deploy.
                out.append(findings.error(
                    "registry-path", path,
                    "resource_registry names %s, which does not exist" % target))
        environments.merge(merged, env)
    return merged, out


def _yaml_line(path):
    """' at line N' for a YAML syntax error (heatclient's message drops it)."""
    import yaml
    try:
        with open(path, "rb") as f:
            yaml.safe_load(f)
    except yaml.MarkedYAMLError as e:
        if e.problem_mark is not None:
            return " at line %d" % (e.problem_mark.line + 1)
    except (OSError, yaml.YAMLError):
        pass
    return ""


def _strip_prefix(message, path):
    prefix = "environment file %s: " % path
    return message[len(prefix):] if message.startswith(prefix) else message


def _enabled(merged, roles, index):
    """{template path: [(service, role)]} for services of deployed roles."""
    counts = services.role_counts(merged, roles)
    enabled = {}
    for role in roles:
        if counts[role["name"]] <= 0:
            continue
        for service in services.role_services(merged, role):
            path = index.resolve(service)
            if path is not None:
                enabled.setdefault(path, []).append((service, role["name"]))
    return enabled


def _who(users):
    service, role = users[0]
    more = " and %d more" % (len(users) - 1) if len(users) > 1 else ""
    return "%s on %s%s" % (service, role, more)


def _rel(path):
    """Path shown to the user: absolute, so it means the same from any directory."""
    return path


def _service_findings(index, enabled):
    """Unusable enabled templates and the parameters each one needs."""
    out, needed = [], {}
    for path, users in sorted(enabled.items()):
        doc = index.load(path)
        if doc is None:
            continue  # reported with the template problems
        outputs = doc.get("outputs") or {}
        if "role_data" not in outputs:
            out.append(findings.error(
                "service-template", _rel(path),
                "has no outputs.role_data, so it is not a service template "
                "(mapped for %s)" % _who(users)))
            continue
        for name, origin in index.required(path).items():
            needed.setdefault(name, (origin, users))
    return out, needed


def _declared_anywhere(index, registry, collection_root):
    names = set()
    for path in set(templates.registry_files(registry)):
        names |= index.declared(path)
    if collection_root:
        for path in templates.collection(collection_root):
            names |= index.declared(path)
    return names


def _undeclared(params, declared):
    out = []
    for name in sorted(params):
        if not templates.is_image_param(name) or name in declared:
            continue
        other = ("Container" + name[len("Docker"):] if name.startswith("Docker")
                 else "Docker" + name[len("Container"):] if name.startswith("Container")
                 else None)
        hint = (" (the templates use %s: parameters of another release?)" % other
                if other in declared else " (a typo, or a service not mapped?)")
        out.append(findings.warning(
            "parameter-undeclared", name,
            "is set but no template declares it, so Heat ignores it%s" % hint))
    return out


def _unset(needed, params):
    """Errors for parameters nobody sets; one note for those the plan or
    deploy supplies (a real tree leaves its passwords unset on purpose)."""
    out, generated, by_deploy = [], [], []
    release = supplied.release_of(n for n in needed if templates.is_image_param(n))
    for name, (origin, users) in sorted(needed.items()):
        if name in params:
            continue
        if templates.is_image_param(name):
            check = "parameter-unset"
        elif name in supplied.GENERATED[release]:
            generated.append(name)
            continue
        elif name in supplied.BY_DEPLOY[release]:
            by_deploy.append(name)
            continue
        else:
            check = "parameter-required"
        out.append(findings.error(
            check, name, "Property %s not assigned (needed by %s, template %s)"
            % (name, _who(users), _rel(origin))))
    if generated or by_deploy:
        why = []
        if generated:
            why.append("%d generated by the deployment plan (tripleo-common's %s "
                       "passwords and keys: %s)" % (len(generated), release.title(),
                                                   ", ".join(generated)))
        if by_deploy:
            why.append("%d set by openstack overcloud deploy or its plan (%s)"
                       % (len(by_deploy), ", ".join(by_deploy)))
        out.append(findings.info(
            "parameter-supplied", "%d parameter(s)" % (len(generated) + len(by_deploy)),
            "not set by these environments, assumed supplied: %s" % "; ".join(why)))
    return out


def _containerized(merged, roles):
    """An error when no deployed service runs in a container: prepare would
    then keep every image (it cannot tell which are needed) and deploy would
    install the overcloud without containers."""
    enabled = services.enabled_services(merged, roles)
    if not enabled or enabled & services.containerized_services(merged):
        return []
    return [findings.error(
        "no-containers", "resource_registry",
        "no environment maps a service of a deployed role to a containerized "
        "template (docker/services/ or deployment/*-container*.yaml): "
        "environments/docker.yaml is missing, so nothing would run in containers")]


def validate(env_files, env_dirs=(), roles_file=None, check_images=False,
             collection_root=None, jobs=8):
    """Findings for the environments ``env_files`` (in deploy's order).

    ``collection_root`` is a heat-templates tree whose parameters count as
    declared (default: the one installed with this package).
    """
    files = environments.ordered_files(env_files, env_dirs)
    merged, out = _parse_environments(files)
    registry = merged.get("resource_registry") or {}
    index = templates.TemplateIndex(registry)
    for path in set(templates.registry_files(registry)):
        index.walk(path)
    roles = services.load_roles(roles_file or services.default_roles_file())
    enabled = _enabled(merged, roles, index)
    for path in enabled:
        index.walk(path)
    reported = {f.message.rsplit(" names ", 1)[-1].split(",")[0]
                for f in out if f.check == "registry-path"}
    rendered = []
    for problem in index.problems.values():
        if problem.path in reported:
            continue
        if problem.check == "template-rendered":
            rendered.append(problem.path)
            continue
        parent = index.parents.get(problem.path)
        out.append(findings.error(
            problem.check, _rel(problem.path), problem.message +
            (" (used by %s)" % _rel(parent) if parent else "")))

    if rendered:
        out.append(findings.info(
            "template-rendered", "%d template(s)" % len(rendered),
            "not checked: the deployment plan renders them from their .j2.yaml "
            "(%s)" % ", ".join(sorted(_rel(p) for p in rendered))))

    service_out, needed = _service_findings(index, enabled)
    out.extend(service_out)
    params = dict(merged.get("parameter_defaults") or {})
    params.update(merged.get("parameters") or {})
    out.extend(_unset(needed, params))
    out.extend(_containerized(merged, roles))

    if collection_root is None:
        collection_root = data.path("heat-templates")
    declared = _declared_anywhere(index, registry, collection_root)
    release = supplied.release_of(n for n in needed if templates.is_image_param(n))
    # what prepare itself writes for this release is no typo, whether or not
    # a template of this deployment declares it
    out.extend(_undeclared(params, declared | catalog.all_params(release)))

    used = [n for n in needed if templates.is_image_param(n)]
    refs, ref_out = images.parse_values(params, used)
    out.extend(ref_out)
    out.extend(images.check_tags(params, {
        n: _rel(needed[n][0]) for n in used if templates.retags_image(needed[n][0])}))
    insecure = images.insecure_registries(params)
    out.extend(images.check_insecure_entries(insecure))
    if check_images:
        out.extend(images.check_exist(refs, insecure, jobs=jobs))
    else:
        out.extend(images.check_registries(refs, insecure))
    return sorted(set(out), key=findings.sort_key)
