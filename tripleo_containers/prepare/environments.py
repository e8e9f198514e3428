"""Load and merge Heat environments the way `openstack overcloud deploy` does.

python-heatclient parses each file (its section check included) and merges
them in order, later files winning, recursively. Unlike heatclient's
process_environment_and_files we do not fetch every referenced template:
prepare only needs to know where each resource type points, so relative
resource_registry paths are resolved against the directory of the
environment that named them (Heat's rule) and left as absolute paths.
"""
import glob
import os

from tripleo_containers import exceptions
from tripleo_containers import fileutil


def ordered_files(env_files=(), env_dirs=()):
    """The files in deploy's order: each directory's sorted *.yaml, then -e files."""
    out = []
    for d in env_dirs or ():
        if not os.path.isdir(d):
            raise exceptions.InputError(
                "environment directory %s: not a directory" % d)
        out.extend(sorted(glob.glob(os.path.join(d, "*.yaml"))))
    out.extend(env_files or ())
    return out


def _is_local_path(value):
    return (isinstance(value, str) and not value.startswith("OS::")
            and "://" not in value and value.endswith((".yaml", ".yml", ".template")))


def _resolve_registry(registry, base_dir):
    resolved = {}
    for key, value in registry.items():
        if isinstance(value, dict):
            resolved[key] = _resolve_registry(value, base_dir)
        elif _is_local_path(value):
            resolved[key] = os.path.normpath(os.path.join(base_dir, value))
        else:
            resolved[key] = value
    return resolved


def _problem(exc):
    """heatclient wraps the YAML error: say its line, column and problem
    (its first line alone, "while parsing a flow node", says neither)."""
    inner = exc.args[0] if exc.args else None
    mark = getattr(inner, "problem_mark", None)
    if mark is not None:
        what = "; ".join(t for t in (getattr(inner, "context", None),
                                     getattr(inner, "problem", None)) if t)
        return "line %d, column %d: %s" % (mark.line + 1, mark.column + 1, what)
    return str(exc).splitlines()[0] if str(exc) else "not a Heat environment"


def last_setting(files, key):
    """The file the merged parameter_defaults ``key`` comes from: the last
    that sets it (for error messages; later files win)."""
    for path in reversed(files):
        if key in (parse_file(path).get("parameter_defaults") or {}):
            return path
    return None


def parse_file(path):
    """One environment as a dict with resource_registry paths made absolute."""
    from heatclient.common import environment_format
    text = fileutil.read_text(path, "environment file")
    try:
        env = environment_format.parse(text)
    except ValueError as e:
        raise exceptions.InputError(
            "environment file %s: %s (a Heat environment is a mapping with "
            "sections such as parameter_defaults and resource_registry)"
            % (path, _problem(e)))
    registry = env.get("resource_registry")
    if registry is not None:
        if not isinstance(registry, dict):
            raise exceptions.InputError(
                "environment file %s: resource_registry must be a mapping" % path)
        env["resource_registry"] = _resolve_registry(
            registry, os.path.dirname(os.path.abspath(path)))
    for section in ("parameter_defaults", "parameters"):
        if env.get(section) is not None and not isinstance(env[section], dict):
            raise exceptions.InputError(
                "environment file %s: %s must be a mapping" % (path, section))
    return env


def merge(old, new):
    """Merge ``new`` into ``old`` with python-heatclient's deep_update rules:
    mappings merge recursively, a null never erases a mapping, anything else
    replaces. (heatclient's template_utils costs ~0.1 s of imports at every
    prepare; tests/unit/test_prepare.py proves the two agree.)"""
    old = {} if old is None else old
    for key, value in new.items():
        if isinstance(value, dict):
            # (heatclient raises TypeError when a mapping meets a list here)
            current = old.get(key)
            old[key] = merge(current if isinstance(current, dict) else {}, value)
        elif value is None and isinstance(old.get(key), dict):
            continue
        else:
            old[key] = value
    return old


def load(env_files=(), env_dirs=()):
    """Merge the environments in order; returns (merged dict, files used)."""
    files = ordered_files(env_files, env_dirs)
    merged = {}
    for path in files:
        merge(merged, parse_file(path))
    return merged, files
