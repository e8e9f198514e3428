"""What Heat would load for a set of service templates, without Heat.

Heat resolves a resource ``type`` that is a relative file name against the
directory of the template naming it, and any other type through the merged
resource_registry. A parameter without a default must be given by the parent
(the overcloud passes only the standard service parameters), as a property of
the nested resource, or through parameter_defaults; otherwise the deploy
stops with "Property <name> not assigned".
"""
import os
import re

STANDARD_PARAMETERS = frozenset([
    "ServiceData", "ServiceNetMap", "EndpointMap", "DefaultPasswords",
    "RoleName", "RoleParameters"])
# Docker<X>Image (Pike), Container<X>Image (Train) and Train's Ceph dashboard
# images (PrometheusContainerImage, GrafanaContainerImage, ...)
IMAGE_PARAM = re.compile(r"^((Docker|Container)[A-Za-z0-9]*Image|[A-Za-z0-9]+ContainerImage)$")
TEMPLATE_SUFFIXES = (".yaml", ".yml", ".template")


class Problem(object):
    """A template Heat could not load; reported once per file."""

    def __init__(self, check, path, message):
        self.check, self.path, self.message = check, path, message


def is_file_type(value):
    return (isinstance(value, str) and not value.startswith("OS::")
            and "://" not in value and value.endswith(TEMPLATE_SUFFIXES))


def registry_files(registry):
    """Every template path a resource_registry (or its resources: part) names."""
    for key, value in (registry or {}).items():
        if isinstance(value, dict):
            for path in registry_files(value):
                yield path
        elif is_file_type(value):
            yield value


def plan_rendered(path):
    """The Jinja2 template the deployment plan renders ``path`` from, or None.

    tripleo-heat-templates ships foo.j2.yaml for foo.yaml and, per role,
    dir/x.role.j2.yaml for dir/<role>-x.yaml; the plan writes the .yaml files,
    so a checkout or package tree lacks them until then.
    """
    folder, name = os.path.split(path)
    if not name.endswith(".yaml"):
        return None
    stem = name[:-len(".yaml")]
    candidates = [stem + ".j2.yaml"]
    if "-" in stem:
        candidates.append(stem.split("-", 1)[1] + ".role.j2.yaml")
    for candidate in candidates:
        source = os.path.join(folder, candidate)
        if os.path.isfile(source):
            return source
    return None


def is_image_param(name):
    return bool(IMAGE_PARAM.match(name))


class TemplateIndex(object):
    """Loads templates once, follows nesting, records what failed to load."""

    def __init__(self, registry):
        self.registry = {k: v for k, v in (registry or {}).items() if isinstance(v, str)}
        self._docs = {}
        self.problems = {}
        self.parents = {}

    def load(self, path, record=True):
        """The template as a dict, or None if it cannot be used."""
        path = os.path.normpath(path)
        if path not in self._docs:
            self._docs[path] = self._read(path)
        doc = self._docs[path]
        if isinstance(doc, Problem):
            if record:
                self.problems.setdefault(path, doc)
            return None
        return doc

    @staticmethod
    def _read(path):
        from heatclient.common import template_format
        if not os.path.isfile(path):
            if plan_rendered(path):
                return Problem("template-rendered", path,
                               "rendered by the deployment plan from %s"
                               % os.path.basename(plan_rendered(path)))
            return Problem("template-missing", path,
                           "template file does not exist")
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            return Problem("template-yaml", path, "cannot read it: %s" % e)
        try:
            doc = template_format.parse(text)
        except ValueError as e:
            first = " ".join(str(e).split())
            return Problem("template-yaml", path, "not valid YAML: %s" % first)
        if not isinstance(doc, dict) or not doc.get("heat_template_version"):
            return Problem("template-format", path,
                           "not a Heat template (no heat_template_version)")
        for section in ("parameters", "resources", "outputs"):
            if not isinstance(doc.get(section) or {}, dict):
                return Problem("template-format", path,
                               "section %s must be a mapping" % section)
        return doc

    def resolve(self, type_name, base_dir=None):
        """Template path behind a resource type, or None for a built-in or
        disabled (OS::Heat::None) type and for a type nothing maps."""
        seen = set()
        while type_name not in seen:
            if is_file_type(type_name):
                if base_dir and not os.path.isabs(type_name):
                    return os.path.normpath(os.path.join(base_dir, type_name))
                return os.path.normpath(type_name)
            seen.add(type_name)
            target = self.registry.get(type_name)
            if target is None:
                return None
            # registry paths are absolute already (environments.parse_file)
            type_name, base_dir = target, None
        return None

    def nested(self, path):
        """(property names given, nested template path) for each resource."""
        doc = self.load(path)
        out = []
        for res in ((doc or {}).get("resources") or {}).values():
            if not isinstance(res, dict):
                continue
            target = self.resolve(res.get("type"), os.path.dirname(path))
            if target:
                self.parents.setdefault(target, path)
                props = res.get("properties")
                out.append((set(props) if isinstance(props, dict) else set(), target))
        return out

    def walk(self, path, _seen=None):
        """Every template Heat fetches for ``path``, itself included."""
        seen = set() if _seen is None else _seen
        path = os.path.normpath(path)
        if path in seen:
            return seen
        seen.add(path)
        for _, target in self.nested(path):
            self.walk(target, seen)
        return seen

    def required(self, path, given=frozenset(), top=True, _stack=()):
        """{parameter: declaring template} that only the environment can set."""
        doc = self.load(path)
        if doc is None or path in _stack:
            return {}
        out = {}
        for name, spec in (doc.get("parameters") or {}).items():
            has_default = isinstance(spec, dict) and spec.get("default") is not None
            if has_default or name in given or (top and name in STANDARD_PARAMETERS):
                continue
            out.setdefault(name, path)
        for props, target in self.nested(path):
            for name, origin in self.required(target, props, False, _stack + (path,)).items():
                out.setdefault(name, origin)
        return out

    def declared(self, path):
        """Names of every parameter declared by ``path`` or what it nests."""
        names = set()
        for p in self.walk(path):
            doc = self.load(p, record=False)
            names.update(((doc or {}).get("parameters") or {}).keys())
        return names


def collection(root):
    """Template files of a heat-templates tree (roles and other data skipped)."""
    found = []
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        for name in sorted(files):
            if name.endswith(TEMPLATE_SUFFIXES):
                found.append(os.path.join(dirpath, name))
    return found


def retags_image(path):
    """True for templates that cut images at their last ':' (pacemaker bundles
    and ceph-ansible), whose images therefore need an explicit tag."""
    parts = path.replace(os.sep, "/").split("/")
    return "pacemaker" in parts or "ceph-ansible" in parts
