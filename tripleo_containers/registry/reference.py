"""One parser for image references: ``[host[:port]/]path[:tag][@digest]``.

The grammar is the one distribution's reference package and the Docker CLI
use, so a name means the same thing here as on the nodes that pull it:

* the first path component is a registry only when it contains a '.' or a
  ':' or is 'localhost' (or is a bracketed IPv6 address); otherwise the
  image lives on Docker Hub (Pike treated every first component as a host);
* Docker Hub names are normalised: ``docker.io`` is the registry, the API
  lives on ``registry-1.docker.io``, one-component names get ``library/``;
* repository components are lowercase; digests are ``algorithm:hex`` with
  lowercase hex (sha256 needs exactly 64).
"""
import re

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(r"^%s(?:/%s)*$" % (_COMPONENT, _COMPONENT))
_HOST_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(
    r"^(?:%s(?:\.%s)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$" % (_HOST_LABEL, _HOST_LABEL))
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(
    r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-f0-9]{32,}$")
_MAX_NAME = 255


class InvalidReference(ValueError):
    """A string that is not an image reference; str() says why."""

    def __init__(self, text, reason):
        self.text = text
        self.reason = reason
        super().__init__("invalid image reference %r: %s" % (text, reason))


def _is_registry(component):
    return ("." in component or ":" in component or component == "localhost"
            or component.startswith("["))


class InvalidRegistry(InvalidReference):
    """A user-given registry address that is not host[:port]."""

    def __init__(self, text, origin):
        self.text = text
        self.reason = "not a registry address"
        ValueError.__init__(
            self, "%s %r is not a registry address; use HOST:PORT, e.g. "
                  "192.168.24.1:8787 ([v6addr]:8787 for IPv6)" % (origin, text))


def parse_registry(text, origin="registry"):
    """A registry address given by the user (``host``, ``host:port``,
    ``[v6]:port``), returned as given; InvalidRegistry naming ``origin``
    (the option or file it came from) when it is not one."""
    if not isinstance(text, str) or not valid_host(text):
        raise InvalidRegistry(text, origin)
    return text


def valid_host(host):
    """True for ``host``, ``host:port``, ``[v6]:port`` as used in references."""
    if not _HOST_RE.match(host or ""):
        return False
    port = host.rsplit(":", 1)[1] if re.search(r":[0-9]+$", host) else None
    return port is None or 0 < int(port) < 65536


class Reference(object):
    """A parsed reference; immutable, hashable, compares by canonical form."""

    __slots__ = ("registry", "repository", "tag", "digest")

    def __init__(self, registry, repository, tag=None, digest=None):
        object.__setattr__(self, "registry", registry)
        object.__setattr__(self, "repository", repository)
        object.__setattr__(self, "tag", tag)
        object.__setattr__(self, "digest", digest)

    def __setattr__(self, name, value):
        raise AttributeError("Reference is immutable")

    @property
    def name(self):
        """registry/repository, without tag or digest."""
        return "%s/%s" % (self.registry, self.repository)

    @property
    def api_host(self):
        """The host:port that serves the v2 API for this registry."""
        return DOCKER_HUB_API if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def identifier(self):
        """What goes after /manifests/: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def with_registry(self, registry):
        """The same repository, tag and digest on another registry."""
        return Reference(_normalise_registry(registry), self.repository,
                         self.tag, self.digest)

    def with_tag(self, tag):
        return Reference(self.registry, self.repository, tag, None)

    def with_digest(self, digest):
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self):
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out

    def __repr__(self):
        return "Reference(%r)" % str(self)

    def __eq__(self, other):
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


def _normalise_registry(registry):
    if registry in _HUB_ALIASES:
        return DEFAULT_REGISTRY
    if not valid_host(registry):
        raise InvalidReference(registry, "not a registry host[:port]")
    return registry


def parse(text, default_registry=DEFAULT_REGISTRY):
    """Parse ``text`` into a Reference or raise InvalidReference."""
    if not isinstance(text, str) or not text:
        raise InvalidReference(text, "empty reference")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidReference(text, "contains white space")
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise InvalidReference(
                text, "digest %r is not algorithm:hex with lowercase hex" % digest)
        if digest.startswith("sha256:") and len(digest) != 71:
            raise InvalidReference(text, "a sha256 digest has 64 hex digits")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        if not _TAG_RE.match(tag):
            raise InvalidReference(
                text, "tag %r may hold only letters, digits, '_', '.', '-' "
                "(at most 128, not starting with '.' or '-')" % tag)
    first, sep, remainder = rest.partition("/")
    try:
        if sep and _is_registry(first):
            registry, path = _normalise_registry(first), remainder
        else:
            registry, path = _normalise_registry(default_registry), rest
    except InvalidReference as exc:
        raise InvalidReference(text, "%r is %s" % (exc.text, exc.reason))
    if not path:
        raise InvalidReference(text, "no repository name")
    if not _PATH_RE.match(path):
        if path.lower() != path:
            reason = "repository %r must be lowercase" % path
        else:
            reason = ("repository %r must be lowercase components of letters "
                      "and digits separated by '/', '.', '_', '__' or '-'" % path)
        raise InvalidReference(text, reason)
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = "library/" + path
    if len(registry) + 1 + len(path) > _MAX_NAME:
        raise InvalidReference(text, "name longer than %d characters" % _MAX_NAME)
    return Reference(registry, path, tag, digest)


def push_target(imagename, push_destination):
    """Where an image goes on its push destination: same repository and tag.

    prepare writes this into the Heat environment and upload pushes to it, so
    both must use this one rule.
    """
    return parse(imagename).with_registry(push_destination)


# Tags that name a moving target rather than a build.  A tag without any
# digit (current-tripleo, pike, stable) is taken as moving too.
FLOATING_TAGS = frozenset(("latest", "current-tripleo", "current-tripleo-rdo",
                           "tripleo-ci-testing", "current", "stable", "master"))


def is_floating(tag):
    """True when ``tag`` may point at another image tomorrow."""
    return not tag or tag in FLOATING_TAGS or not re.search(r"[0-9]", tag)
