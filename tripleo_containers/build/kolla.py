"""Turn an images file into kolla-build runs.

kolla names an image ``[registry/]namespace/<image_name_prefix><name>:tag``
and selects what to build with regexes over ``<name>``.  An images file
names images in full (``docker.io/tripleopike/centos-binary-nova-api:tag``),
so each entry is cut back into those parts: images sharing registry,
namespace, tag and prefix are built by one kolla run, with ``^name$``
regexes (kolla's own matching is an unanchored ``re.search``, so plain
``keystone`` would also build keystone-fernet and barbican-keystone-listener).

The name prefix (``centos-binary-`` in Pike's files; kolla 23 no longer
produces that naming, it is just a prefix now) is found by matching the end
of each name against the images kolla has Dockerfiles for; ``prefix``
overrides that.  kolla has no name suffix, so a suffix can be stripped for
listing and rendering but cannot be produced by a real build.

kolla is an optional dependency and runs as a subprocess (see
kolla_runner.py); this module never imports it.
"""
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

from tripleo_containers import data
from tripleo_containers import exceptions
from tripleo_containers import fileutil
from tripleo_containers.registry import reference

BASES = ("debian", "rocky", "ubuntu")
INSTALL_HINT = "pip install 'tripleo-containers[build]'"
OVERRIDES = "tripleo_kolla_template_overrides.j2"
RUNNER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kolla_runner.py")
TAIL_LINES = 20

# Pike-era kolla names that kolla 23 builds under another name; only used to
# say so when such an entry is skipped (building it under the new name would
# not produce the image the images file and the Heat environment name).
RENAMED = {"mariadb": "mariadb-server", "nova-placement-api": "placement-api",
           "redis": "valkey-server"}


class BuildError(exceptions.Error):
    """A build could not run or failed."""


class KollaMissing(BuildError):
    """kolla (or the kolla-build the user named) is not available."""


class KollaFailed(BuildError):
    """kolla-build exited non-zero; str() carries the command and its last lines."""

    def __init__(self, argv, returncode, tail):
        self.argv = argv
        self.returncode = returncode
        self.tail = list(tail)
        lines = ["kolla-build failed (exit %d): %s" % (returncode, _quote(argv))]
        if self.tail:
            lines.append("last %d lines of its output:" % len(self.tail))
            lines.extend("  " + line for line in self.tail)
        super().__init__("\n".join(lines))


def _quote(argv):
    import shlex
    return " ".join(shlex.quote(a) for a in argv)


# --------------------------------------------------------------------------
# finding kolla


class Kolla(object):
    """How to run kolla-build: ``python`` + our runner when kolla's Python is
    known (fast path), else the ``kolla-build`` executable as is."""

    def __init__(self, python=None, executable=None):
        self.python = python
        self.executable = executable

    def argv(self, args):
        if self.python:
            return [self.python, RUNNER] + list(args)
        return [self.executable] + list(args)

    def image_names(self):
        """Names of the images kolla has Dockerfiles for, or None if unknown."""
        if not self.python:
            return None
        proc = subprocess.run([self.python, RUNNER, "--tc-kolla-dir"],
                              capture_output=True, text=True, timeout=120)
        folder = proc.stdout.strip()
        if proc.returncode != 0 or not os.path.isdir(folder):
            raise KollaMissing(
                "cannot import kolla with %s: %s; %s" % (
                    self.python, (proc.stderr.strip().splitlines() or ["?"])[-1],
                    INSTALL_HINT))
        return image_names_in(folder)

    def __repr__(self):
        return "Kolla(python=%r, executable=%r)" % (self.python, self.executable)


def image_names_in(folder):
    """Image names under a kolla docker/ folder: every directory holding a
    Dockerfile.j2 (nested ones such as keystone/keystone-fernet included)."""
    names = set()
    for root, _dirs, files in os.walk(folder):
        if "Dockerfile.j2" in files:
            names.add(os.path.basename(root))
    return names


def _python_of(script):
    """The interpreter of a Python console script (its #! line), or None."""
    try:
        with open(script, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode("utf-8", "replace").split()
    if words and os.path.basename(words[0]).startswith("python"):
        return words[0]
    return None


def find_kolla(kolla_build=None):
    """Locate kolla: ``kolla_build`` (a path) if given, else kolla importable
    by this Python, else ``kolla-build`` on PATH.  Raises KollaMissing."""
    if kolla_build:
        path = shutil.which(kolla_build) or kolla_build
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise KollaMissing("--kolla-build %s: not an executable file" % kolla_build)
        return Kolla(python=_python_of(path), executable=path)
    import importlib.util
    if importlib.util.find_spec("kolla") is not None:
        if importlib.util.find_spec("docker") is None:
            raise KollaMissing("kolla needs the 'docker' Python package: " + INSTALL_HINT)
        return Kolla(python=sys.executable, executable=None)
    path = shutil.which("kolla-build")
    if path:
        return Kolla(python=_python_of(path), executable=path)
    raise KollaMissing("kolla is not installed: %s (or pass --kolla-build PATH)"
                       % INSTALL_HINT)


# --------------------------------------------------------------------------
# planning


Image = collections.namedtuple("Image", "imagename kolla_name")


class Group(object):
    """Images one kolla run builds: same registry, namespace, tag, prefix."""

    def __init__(self, registry, namespace, tag, prefix, suffix):
        self.registry = registry      # None: Docker Hub (kolla's default)
        self.namespace = namespace
        self.tag = tag
        self.prefix = prefix
        self.suffix = suffix
        self.images = []

    def target(self, kolla_name):
        """The name kolla gives ``kolla_name`` in this run."""
        name = "%s/%s%s:%s" % (self.namespace, self.prefix, kolla_name, self.tag)
        return "%s/%s" % (self.registry, name) if self.registry else name

    def regexes(self):
        return ["^%s$" % re.escape(img.kolla_name) for img in self.images]

    def kolla_args(self):
        args = ["--namespace", self.namespace, "--tag", self.tag,
                "--image-name-prefix", self.prefix]
        if self.registry:
            args += ["--registry", self.registry]
        return args


class Plan(object):
    def __init__(self):
        self.groups = []
        self.skipped = []   # (imagename, reason)

    @property
    def images(self):
        return [img for g in self.groups for img in g.images]


def _split_name(last, known, prefix, suffix):
    """(prefix, kolla name) of a repository's last component, or (None, reason)."""
    if suffix:
        if not last.endswith(suffix):
            return None, "name does not end with suffix %r" % suffix
        last = last[:-len(suffix)]
    if prefix is not None:
        if not last.startswith(prefix):
            return None, "name does not start with prefix %r" % prefix
        name = last[len(prefix):]
        if known is not None and name not in known:
            hint = RENAMED.get(name)
            return None, "kolla has no image %r%s" % (
                name, " (it builds %s)" % hint if hint in known else "")
        return prefix, name
    if known is None:
        return "", last
    best = None
    for start in [0] + [i + 1 for i, c in enumerate(last) if c == "-"]:
        if last[start:] in known:
            best = start
            break
    if best is None:
        hints = ["%s (kolla now builds it as %s)" % (old, new)
                 for old, new in sorted(RENAMED.items())
                 if last.endswith(old) and new in known]
        return None, "kolla has no image named like %r%s" % (
            last, "; " + hints[0] if hints else "")
    return last[:best], last[best:]


def _common_prefix(names):
    """Longest '-'-terminated prefix shared by all names (2 or more), else ''."""
    if len(names) < 2:
        return ""
    common = os.path.commonprefix(list(names))
    return common[:common.rfind("-") + 1]


def make_plan(imagenames, known=None, prefix=None, suffix="", registry=None,
              exclude=()):
    """Group imagenames into kolla runs.

    known: kolla's image names (None when unknown: the prefix is then
    ``prefix`` or the names' common '-'-terminated prefix); registry:
    replaces every image's registry; exclude: kolla names, repository names
    or full imagenames to leave out.  Raises InputError for an unparsable
    name; images kolla cannot build are recorded in ``plan.skipped``.
    """
    exclude = set(exclude or ())
    plan = Plan()
    groups = collections.OrderedDict()
    parsed = []
    for name in imagenames:
        try:
            ref = reference.parse(name)
            if registry:
                ref = ref.with_registry(registry)
        except reference.InvalidReference as e:
            raise exceptions.InputError("images file: %s" % e)
        if ref.digest:
            plan.skipped.append((name, "pinned by digest; kolla builds tags"))
            continue
        namespace, _, last = ref.repository.rpartition("/")
        if not namespace:
            plan.skipped.append((name, "no namespace; kolla names images namespace/name"))
            continue
        parsed.append((name, ref, namespace, last))
    if known is None and prefix is None:
        prefix = _common_prefix([p[3] for p in parsed])
    for name, ref, namespace, last in parsed:
        name_prefix, kolla_name = _split_name(last, known, prefix, suffix)
        if name_prefix is None:
            plan.skipped.append((name, kolla_name))
            continue
        if exclude & {kolla_name, last, ref.repository, name}:
            plan.skipped.append((name, "excluded"))
            continue
        hub = ref.registry == reference.DEFAULT_REGISTRY
        key = (None if hub else ref.registry, namespace, ref.tag or "latest",
               name_prefix, suffix or "")
        if key not in groups:
            groups[key] = Group(*key)
        group = groups[key]
        if kolla_name not in [i.kolla_name for i in group.images]:
            group.images.append(Image(name, kolla_name))
    plan.groups = list(groups.values())
    return plan


# --------------------------------------------------------------------------
# running


def overrides_path():
    return data.path("container-images", OVERRIDES)


def write_config(path, base=None):
    """Our kolla config: the TripleO template overrides (and the base).

    It goes first on kolla's command line so the user's --kolla-config-file
    values win; template_override is a multi-valued kolla option, so a user
    override file adds to ours instead of replacing it.
    """
    lines = ["# written by openstack overcloud container image build",
             "[DEFAULT]", "template_override = %s" % overrides_path()]
    if base:
        lines.append("base = %s" % base)
    fileutil.atomic_write_all({path: "\n".join(lines) + "\n"})
    return path


def run_kolla(kolla, args, on_line=None, timeout=None):
    """Run kolla-build ARGS; returns its stdout lines.

    stderr (kolla's log) goes line by line to ``on_line``; the last lines of
    both streams are kept for the error.  Raises KollaFailed on a non-zero
    exit, KollaMissing if it cannot start.
    """
    argv = kolla.argv(args)
    tail = collections.deque(maxlen=TAIL_LINES)
    out = []
    lock = threading.Lock()
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, errors="replace",
                                env=dict(os.environ, PYTHONUNBUFFERED="1"))
    except OSError as e:
        raise KollaMissing("cannot run %s: %s; %s" % (argv[0], e.strerror or e, INSTALL_HINT))

    def pump_stderr():
        for line in proc.stderr:
            line = line.rstrip("\n")
            with lock:
                tail.append(line)
            if on_line:
                on_line(line)

    reader = threading.Thread(target=pump_stderr, daemon=True)
    reader.start()
    for line in proc.stdout:
        line = line.rstrip("\n")
        out.append(line)
        with lock:
            tail.append(line)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = -9
    reader.join(timeout=10)
    if rc != 0:
        raise KollaFailed(argv, rc, tail)
    return out


class Request(object):
    """What the user asked for; see the build command's options."""

    def __init__(self, config_files, kolla_config_files=(), mode="build",
                 exclude=(), work_dir=None, push=False, base=None, registry=None,
                 prefix=None, suffix="", kolla_build=None, timeout=None):
        if base is not None and base not in BASES:
            raise exceptions.InputError(
                "--base %s: kolla builds on %s" % (base, ", ".join(BASES)))
        for path in kolla_config_files:
            if not os.path.isfile(path):
                raise exceptions.InputError(
                    "--kolla-config-file %s: no such file" % path)
        self.config_files = list(config_files)
        self.kolla_config_files = [os.path.abspath(p) for p in kolla_config_files]
        self.mode = mode        # build | template | list | dependencies
        self.exclude = list(exclude)
        self.work_dir = work_dir
        self.push = push
        self.base = base
        self.registry = registry
        self.prefix = prefix
        self.suffix = suffix or ""
        self.kolla_build = kolla_build
        self.timeout = timeout


Row = collections.namedtuple("Row", "kolla_name image detail")


class Result(object):
    """rows: [Row]; skipped: [(imagename, reason)]; work_dirs: kept folders."""

    def __init__(self):
        self.rows = []
        self.skipped = []
        self.work_dirs = []


_MODE_FLAGS = {"build": [], "template": ["--template-only"],
               "list": ["--list-images"], "dependencies": ["--list-dependencies"]}
_LISTED = re.compile(r"^\d+ : (\S+)$")


def build(request, on_line=None):
    """Plan the images file into kolla runs and run them; returns a Result."""
    from tripleo_containers.copy import images_file

    images = images_file.load(request.config_files)
    kolla = find_kolla(request.kolla_build)
    plan = make_plan(images.names(), kolla.image_names(), request.prefix,
                     request.suffix, request.registry, request.exclude)
    result = Result()
    result.skipped = plan.skipped
    if not plan.groups:
        raise exceptions.InputError(
            "%s: no image kolla can build (%d skipped: %s)" % (
                ", ".join(request.config_files), len(plan.skipped),
                "; ".join("%s: %s" % s for s in plan.skipped[:3])))
    if request.suffix and request.mode == "build":
        raise exceptions.InputError(
            "--suffix %s: kolla cannot add a name suffix; build without it and "
            "retag, or use --template-only/--list-images" % request.suffix)
    keep = request.work_dir is not None or request.mode == "template"
    root = request.work_dir or tempfile.mkdtemp(prefix="tripleo-kolla-")
    try:
        os.makedirs(root, exist_ok=True)
        config = write_config(os.path.join(root, "tripleo-kolla-build.conf"), request.base)
        for number, group in enumerate(plan.groups):
            work = root if len(plan.groups) == 1 else os.path.join(root, "group-%d" % number)
            args = ["--config-file", config]
            for path in request.kolla_config_files:
                args += ["--config-file", path]
            args += group.kolla_args() + ["--work-dir", work]
            if request.base:
                args += ["--base", request.base]
            if request.push and request.mode == "build":
                args.append("--push")
            if request.mode == "build":
                args += ["--format", "json"]
            args += _MODE_FLAGS[request.mode] + group.regexes()
            out = run_kolla(kolla, args, on_line, request.timeout)
            result.rows.extend(_rows(request.mode, group, out, work))
            if keep:
                result.work_dirs.append(work)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return result


def _rows(mode, group, out, work):
    requested = {img.kolla_name for img in group.images}
    if mode == "list":
        names = [m.group(1) for m in map(_LISTED.match, out) if m]
        return [Row(n, group.target(n), "requested" if n in requested else "parent")
                for n in names]
    if mode == "dependencies":
        return [Row(n, group.target(n), parent or "")
                for n, parent in _edges(_json_in(out) or {})]
    if mode == "template":
        found = {}
        for root, _dirs, files in os.walk(os.path.join(work, "docker")):
            if "Dockerfile" in files:
                found[os.path.basename(root)] = os.path.join(root, "Dockerfile")
        return [Row(img.kolla_name, group.target(img.kolla_name),
                    found.get(img.kolla_name, "(not rendered)"))
                for img in group.images]
    summary = _json_in(out) or {}
    rows = []
    for status in ("built", "failed", "skipped", "unbuildable"):
        for item in summary.get(status, []):
            detail = status if status != "failed" else "failed: %s" % item.get("status")
            rows.append(Row(item["name"], group.target(item["name"]), detail))
    return rows


def _json_in(lines):
    """The JSON document kolla printed on stdout (after any stray lines)."""
    for start, line in enumerate(lines):
        if line.startswith("{"):
            try:
                return json.loads("\n".join(lines[start:]))
            except ValueError:
                continue
    return None


def _edges(tree, parent=None):
    """kolla's {name: [child | {name: [...]}]} -> [(name, parent)], parents first."""
    edges = []
    items = tree.items() if isinstance(tree, dict) else [(tree, None)]
    for name, children in items:
        edges.append((name, parent))
        for child in children or []:
            edges.extend(_edges(child, name))
    return edges
