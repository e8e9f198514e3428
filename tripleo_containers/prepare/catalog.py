"""Render the image catalog (container-images/overcloud_containers.yaml.j2)."""
from tripleo_containers import data
from tripleo_containers import exceptions
from tripleo_containers import fileutil
from tripleo_containers.registry import reference

# Per release: the catalog, its defaults, the default roles file (None: the
# one shipped with heat-templates/) and the parameter names its templates use.
RELEASES = {
    "pike": {"template": ("overcloud_containers.yaml.j2",),
             "defaults": ("overcloud_containers_defaults.yaml",),
             "roles": None, "scheme": "docker"},
    "train": {"template": ("train", "tripleo_containers.yaml.j2"),
              "defaults": ("train", "tripleo_containers_defaults.yaml"),
              "roles": ("train", "roles_data.yaml"), "scheme": "container"},
}
DEFAULT_RELEASE = "pike"


def default_template(release=DEFAULT_RELEASE):
    return data.path("container-images", *RELEASES[release]["template"])


def defaults(release=DEFAULT_RELEASE):
    """The catalog's default values: the one place they are defined."""
    values = fileutil.load_yaml(
        data.path("container-images", *RELEASES[release]["defaults"]),
        "catalog defaults")
    return dict(values or {})


def default_roles_file(release):
    roles = RELEASES[release]["roles"]
    return data.path("container-images", *roles) if roles else None


def _environment():
    import jinja2
    env = jinja2.Environment(undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    # No globals at all: a name the values do not define must fail loudly
    # instead of rendering one of Jinja2's built-ins (range, namespace...).
    env.globals.clear()
    return env


class Catalog(object):
    """A loaded catalog template and the variables it may be given."""

    def __init__(self, template_file=None, release=DEFAULT_RELEASE):
        import jinja2
        from jinja2 import meta
        self.release = release
        self.path = template_file or default_template(release)
        self.source = fileutil.read_text(self.path, "template file")
        self._env = _environment()
        try:
            ast = self._env.parse(self.source)
            self.template = self._env.from_string(self.source)
        except jinja2.TemplateSyntaxError as e:
            raise exceptions.InputError(
                "template file %s: Jinja2 syntax error at line %s: %s"
                % (self.path, e.lineno, e.message))
        self.defaults = defaults(release)
        self.variables = set(meta.find_undeclared_variables(ast)) | set(self.defaults)

    def check_keys(self, values, origin):
        unknown = sorted(set(values) - self.variables)
        if unknown:
            others = [r for r in sorted(RELEASES) if r != self.release
                      and set(unknown) <= set(defaults(r))]
            raise exceptions.InputError(
                "%s: unknown key %s; known keys: %s%s"
                % (origin, ", ".join(repr(k) for k in unknown),
                   ", ".join(sorted(self.variables)),
                   "; these are keys of the %s catalog: use --release %s"
                   % (others[0].title(), others[0]) if others else ""))

    def render(self, values):
        """Entries [{imagename, params, services}] for defaults + ``values``."""
        import jinja2
        import yaml
        context = dict(self.defaults)
        context.update(values)
        try:
            text = self.template.render(**context)
        except jinja2.UndefinedError as e:
            raise exceptions.InputError(
                "template file %s: %s; give it with --set NAME=VALUE"
                % (self.path, e.message))
        try:
            rendered = fileutil.safe_load(text)
        except yaml.YAMLError as e:
            raise exceptions.InputError(
                "template file %s: rendered text is not valid YAML: %s"
                % (self.path, str(e).splitlines()[0]))
        entries = (rendered or {}).get("container_images_template") \
            if isinstance(rendered, dict) else None
        if not isinstance(entries, list):
            raise exceptions.InputError(
                "template file %s: must render a mapping with a "
                "container_images_template list" % self.path)
        return [self._entry(e, i) for i, e in enumerate(entries, 1)]

    def _entry(self, entry, index):
        if not isinstance(entry, dict) or not isinstance(entry.get("imagename"), str):
            raise exceptions.InputError(
                "template file %s: entry %d has no imagename" % (self.path, index))
        name = entry["imagename"]
        try:
            reference.parse(name)
        except reference.InvalidReference as e:
            raise exceptions.InputError(
                "template file %s renders %s; check --namespace/--prefix/"
                "--suffix/--tag/--set values" % (self.path, e))
        params = entry.get("params") or []
        services = entry.get("services") or []
        if not (isinstance(params, list) and isinstance(services, list)):
            raise exceptions.InputError(
                "template file %s: params and services of %s must be lists"
                % (self.path, name))
        return {"imagename": name, "params": [str(p) for p in params],
                "services": [str(s) for s in services]}


def all_params(release):
    """Every parameter the release's catalog can write, whatever the values."""
    cat = Catalog(release=release)
    names = set()
    for driver in ("default", "other", "odl", "ovn"):
        for entry in cat.render({"neutron_driver": driver}):
            names.update(entry["params"])
    return names
