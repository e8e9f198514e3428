"""Small file helpers shared by commands: atomic writes, YAML reading."""
import errno
import os
import tempfile

from tripleo_containers import exceptions


def atomic_write_all(contents):
    """Write {path: text} so each file is either old or complete, never partial.

    Every temporary file is written first; only when all are on disk are they
    renamed into place, so a failure leaves no output changed. A path that is
    a symbolic link is written through to its target (the link stays, as
    with a plain ``open``), still by rename next to that target.
    """
    staged = []
    path = None
    try:
        for path, text in contents.items():
            target = os.path.realpath(path)
            if os.path.isdir(target):
                raise IsADirectoryError(errno.EISDIR, "is a directory; give a file path")
            fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(target),
                                       dir=os.path.dirname(target))
            staged.append((tmp, target, path))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
        for tmp, target, path in staged:
            os.replace(tmp, target)
        staged = []
    except OSError as e:
        # e.filename may be the temporary file: the user knows only ``path``.
        raise exceptions.InputError("cannot write %s: %s" % (path, e.strerror or e))
    finally:
        for tmp, _, _ in staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def distinct_outputs(options):
    """Refuse two of {option: path} (None = not given) naming one file: the
    later write would silently replace the earlier."""
    seen = {}
    for option, path in options.items():
        if not path:
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise exceptions.InputError(
                "%s and %s both name %s: give each output its own file" % (
                    seen[key], option, path))
        seen[key] = option


def read_text(path, what):
    """Read a user-named file or raise an InputError that names it."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise exceptions.InputError(
            "%s %s: cannot read: %s" % (what, path, e.strerror or e))
    if b"\0" in raw:
        raise exceptions.InputError("%s %s: is a binary file, not YAML" % (what, path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise exceptions.InputError("%s %s: is not UTF-8 text" % (what, path))


def safe_load(text):
    """yaml.safe_load, with libyaml's loader when present (several times faster)."""
    import yaml
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_yaml(path, what):
    """Parse a user-named YAML file; errors name the file and the line."""
    import yaml
    text = read_text(path, what)
    try:
        return safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = " (line %d)" % (mark.line + 1) if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise exceptions.InputError(
            "%s %s: not valid YAML%s: %s" % (what, path, where, problem))
