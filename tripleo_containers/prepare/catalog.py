"""Render the image catalog (container-images/overcloud_containers.yaml.j2)."""
from tripleo_containers import data
from tripleo_containers import exceptions
from tripleo_containers import fileutil
from tripleo_containers.registry import reference

TEMPLATE = "overcloud_containers.yaml.j2"
DEFAULTS = "overcloud_containers_defaults.yaml"


def default_template():
    return data.path("container-images", TEMPLATE)


def defaults():
    """The catalog's default values: the one place they are defined."""
    values = fileutil.load_yaml(data.path("container-images", DEFAULTS),
                                "catalog defaults")
    return dict(values or {})


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

    def __init__(self, template_file=None):
        import jinja2
        from jinja2 import meta
        self.path = template_file or default_template()
        self.source = fileutil.read_text(self.path, "template file")
        self._env = _environment()
        try:
            ast = self._env.parse(self.source)
            self.template = self._env.from_string(self.source)
        except jinja2.TemplateSyntaxError as e:
            raise exceptions.InputError(
                "template file %s: Jinja2 syntax error at line %s: %s"
                % (self.path, e.lineno, e.message))
        self.defaults = defaults()
        self.variables = set(meta.find_undeclared_variables(ast)) | set(self.defaults)

    def check_keys(self, values, origin):
        unknown = sorted(set(values) - self.variables)
        if unknown:
            raise exceptions.InputError(
                "%s: unknown key %s; known keys: %s"
                % (origin, ", ".join(repr(k) for k in unknown),
                   ", ".join(sorted(self.variables))))

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
