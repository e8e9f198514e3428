"""A keychain that only reads files.

Sources, first match wins:

1. an explicit mapping ``{registry: {user: password}}`` (the shape of Heat's
   ``ContainerImageRegistryCredentials``), from ``--registry-credentials``;
2. containers ``auth.json``: ``$REGISTRY_AUTH_FILE``, else
   ``$XDG_RUNTIME_DIR/containers/auth.json``;
3. Docker's ``$DOCKER_CONFIG/config.json`` (``~/.docker/config.json``).

Each credential remembers the *name* of its source so an authentication error
can say where it came from; the secret itself never leaves this object
(``repr`` hides it).
"""
import base64
import json
import os

from tripleo_containers import exceptions
from tripleo_containers.registry import reference

_HUB_KEYS = ("docker.io", "index.docker.io", "registry-1.docker.io")


class CredentialsFileError(exceptions.InputError):
    """A credentials file that cannot be read or has the wrong shape."""


class Credential(object):
    __slots__ = ("username", "password", "source")

    def __init__(self, username, password, source):
        self.username = username
        self.password = password
        self.source = source

    def __repr__(self):
        return "Credential(username=%r, source=%r)" % (self.username, self.source)


def normalise_key(key):
    """The host[:port] of a config key such as ``https://index.docker.io/v1/``."""
    key = (key or "").strip()
    if "://" in key:
        key = key.split("://", 1)[1]
    key = key.split("/", 1)[0].lower()
    return reference.DEFAULT_REGISTRY if key in _HUB_KEYS else key


# An auth file entry that holds something, but no user:password.
UNDECODABLE = object()


def _decode_auth(entry):
    """(user, password), None for an entry without credentials (e.g. only
    a credHelper's identitytoken), or UNDECODABLE."""
    if not isinstance(entry, dict):
        return UNDECODABLE
    if entry.get("username") and entry.get("password") is not None:
        return entry["username"], entry["password"]
    auth = entry.get("auth")
    if not auth:
        return None
    try:
        user, _, password = base64.b64decode(str(auth).strip(), validate=True).decode(
            "utf-8").partition(":")
    except (ValueError, TypeError, UnicodeDecodeError):
        return UNDECODABLE
    return (user, password) if user else UNDECODABLE


def _read_auths(path):
    """({host: (user, password)}, {host: the entry's key as written} of
    entries that could not be decoded) from a docker/containers auth file;
    None if there is no such file."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CredentialsFileError(
            "cannot read credentials file %s: %s" % (path, exc.__class__.__name__))
    good, broken = {}, {}
    auths = doc.get("auths") if isinstance(doc, dict) else None
    for key, entry in (auths.items() if isinstance(auths, dict) else ()):
        pair = _decode_auth(entry)
        if pair is UNDECODABLE:
            broken.setdefault(normalise_key(key), key)
        elif pair:
            good.setdefault(normalise_key(key), pair)
    return good, dict((h, k) for h, k in broken.items() if h not in good)


def load_mapping_file(path):
    """Read ``{registry: {user: password}}`` from a YAML or JSON file."""
    import yaml
    try:
        with open(path, "rb") as f:
            doc = yaml.safe_load(f)
    except OSError as exc:
        raise CredentialsFileError("cannot read credentials file %s: %s" % (
            path, exc.strerror or exc))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " (line %d)" % (mark.line + 1) if mark else ""
        raise CredentialsFileError(
            "credentials file %s is not valid YAML/JSON%s" % (path, where))
    # Accept the Heat parameter wrapped in an environment file too.
    if isinstance(doc, dict) and "parameter_defaults" in doc:
        doc = (doc.get("parameter_defaults") or {}).get(
            "ContainerImageRegistryCredentials", {})
    return validate_mapping(doc, path)


def validate_mapping(doc, name):
    if not isinstance(doc, dict):
        raise CredentialsFileError(
            "credentials %s must map registry -> {username: password}" % name)
    out = {}
    for registry, users in doc.items():
        if (not isinstance(users, dict) or len(users) != 1
                or not all(isinstance(v, (str, int)) for v in users.values())):
            raise CredentialsFileError(
                "credentials %s: entry for %r must be a single "
                "{username: password} pair" % (name, registry))
        (user, password), = users.items()
        out[normalise_key(str(registry))] = (str(user), str(password))
    return out


def default_files(env=None):
    """(source name, path) of the auth files consulted, in order."""
    env = os.environ if env is None else env
    files = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(env["REGISTRY_AUTH_FILE"])
    elif env.get("XDG_RUNTIME_DIR"):
        files.append(os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    docker_dir = env.get("DOCKER_CONFIG") or os.path.join(
        env.get("HOME") or os.path.expanduser("~"), ".docker")
    files.append(os.path.join(docker_dir, "config.json"))
    return files


class Keychain(object):
    """Resolve a registry host to a Credential (or None)."""

    def __init__(self, explicit=None, explicit_source="explicit credentials",
                 files=None, env=None):
        self._sources = []
        self._broken = []   # (file, host, key as written in the file)
        self.searched = []
        if explicit:
            self._sources.append((explicit_source, dict(
                (normalise_key(k), v) for k, v in explicit.items())))
            self.searched.append(explicit_source)
        for path in (default_files(env) if files is None else files):
            read = _read_auths(path)
            if read is None:
                continue
            auths, broken = read
            self.searched.append(path)
            if auths:
                self._sources.append((path, auths))
            self._broken.extend((path, host, key) for host, key in broken.items())

    @classmethod
    def from_file(cls, path=None, env=None):
        explicit = load_mapping_file(path) if path else None
        return cls(explicit=explicit, explicit_source=path or "", env=env)

    def resolve(self, registry):
        key = normalise_key(registry)
        for name, auths in self._sources:
            if key in auths:
                user, password = auths[key]
                return Credential(user, password, name)
        return None

    def describe(self, registry):
        """Where credentials for ``registry`` came from, or why there are
        none, for an authentication error (never the secret)."""
        cred = self.resolve(registry)
        if cred:
            return cred.source
        key = normalise_key(registry)
        for path, host, written in self._broken:
            if host == key:
                return ("none usable: %s has an entry %r whose auth is not base64 of "
                        "user:password; fix or remove it (e.g. log in again)" % (
                            path, written))
        return "none found (searched: %s)" % (", ".join(self.searched) or "nothing")

    def secrets(self):
        """Every password known, for scrubbing error text."""
        return [p for _, auths in self._sources for _, p in auths.values()]


ANONYMOUS = Keychain(files=[])
