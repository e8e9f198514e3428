"""Checks on the image values an environment sets.

Rule for plain-HTTP registries (Docker refuses plain HTTP unless the registry
is in its insecure list, which TripleO fills from DockerInsecureRegistryAddress):
- offline, a registry that is not listed is assumed to speak TLS when its name
  looks public (a dotted DNS name without a port, e.g. docker.io, quay.io);
  one that looks local (IP address, explicit port, localhost or a single-label
  host such as the undercloud's 192.168.24.1:8787) gets a warning, because the
  usual local registry is plain HTTP and only a probe can tell;
- with --check-images the probe decides: a registry that answers over plain
  HTTP but not over HTTPS and is not listed is an error.
"""
import concurrent.futures
import ipaddress

from tripleo_containers.registry import reference
from tripleo_containers.validate import findings

INSECURE_PARAM = "DockerInsecureRegistryAddress"


def insecure_registries(params):
    """Hosts of DockerInsecureRegistryAddress (a list or a comma-separated string)."""
    value = params.get(INSECURE_PARAM)
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return [str(v).strip() for v in value if str(v).strip()]


def check_insecure_entries(hosts):
    out = []
    for host in hosts:
        if "://" in host or "/" in host or not reference.valid_host(host):
            out.append(findings.error(
                "insecure-registry", INSECURE_PARAM,
                "%r is not a registry host[:port]; write e.g. 192.168.24.1:8787 "
                "(no scheme, no path)" % host))
    return out


def looks_local(registry):
    host = registry
    if host.startswith("["):
        return True
    if host.count(":") == 1:
        host, _ = host.split(":")
        return True  # an explicit port: a self-run registry
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host == "localhost" or "." not in host


def parse_values(params, names):
    """({param: Reference}, [findings]) for the image parameters ``names``."""
    refs, out = {}, []
    for name in sorted(names):
        value = params.get(name)
        if value is None:
            continue
        try:
            refs[name] = reference.parse(value)
        except reference.InvalidReference as e:
            out.append(findings.error("image-reference", name, str(e)))
    return refs, out


def has_explicit_tag(value):
    return value.rfind(":") > value.rfind("/") and "@" not in value


def check_tags(params, retagged):
    """Images that pacemaker/ceph-ansible cut at the last ':' need a tag.

    ``retagged`` maps each such parameter to the template that cuts it.
    """
    out = []
    for name in sorted(retagged):
        value = params.get(name)
        if not isinstance(value, str) or has_explicit_tag(value):
            continue
        cut = value.split("@")[0].rsplit(":", 1)[0] if ":" in value else value
        out.append(findings.error(
            "image-tag", name,
            "%s has no explicit :tag but %s cuts it at its last ':' and runs "
            "%s:pcmklatest; give an image with a tag (prepare --tag)"
            % (value, retagged[name], cut)))
    return out


def check_registries(refs, insecure):
    """Offline rule: local-looking registries should be listed as insecure."""
    out = []
    listed = set(insecure)
    users = {}
    for name, ref in refs.items():
        users.setdefault(ref.registry, []).append(name)
    for registry in sorted(users):
        if registry in listed or not looks_local(registry):
            continue
        names = sorted(users[registry])
        out.append(findings.warning(
            "insecure-registry", registry,
            "used by %d image parameter(s) (%s%s) but not in %s; if it serves plain "
            "HTTP (the undercloud registry does) Docker refuses it: add it, or check "
            "it with --check-images" % (len(names), ", ".join(names[:3]),
                                        ", ..." if len(names) > 3 else "", INSECURE_PARAM)))
    return out


def make_client(insecure):
    from tripleo_containers.registry import connect
    return connect.make_client(insecure, retries=1)


def _plain_http_only(registry):
    """True if the registry answers /v2/ over plain HTTP."""
    try:
        with make_client([registry]) as client:
            client.transport.ping(registry)
        return True
    except Exception:  # any failure means "not a plain-HTTP registry"
        return False


def check_exist(refs, insecure, jobs=8, client_factory=make_client):
    """One manifest HEAD per unique image, ``jobs`` at a time."""
    from tripleo_containers.registry import errors
    client = client_factory(list(insecure))
    users = {}
    for name, ref in refs.items():
        users.setdefault(ref, []).append(name)

    def head(ref):
        try:
            return ref, client.head_manifest(ref), None
        except errors.RegistryError as e:
            return ref, None, e

    out = []
    unreachable = {}
    with client, concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for ref, found, error in pool.map(head, sorted(users, key=str)):
            names = ", ".join(sorted(users[ref]))
            if error is not None and isinstance(error, (errors.TLSFailure, errors.Unreachable)) \
                    and ref.registry not in insecure:
                unreachable.setdefault(ref.registry, []).append(ref)
            elif error is not None:
                out.append(findings.error("image-exists", str(ref), "%s (%s)" % (error, names)))
            elif found is None:
                out.append(findings.error(
                    "image-exists", str(ref),
                    "no such manifest in the registry (set by %s); upload it first" % names))
    for registry, refs_ in sorted(unreachable.items()):
        if _plain_http_only(registry):
            out.append(findings.error(
                "insecure-registry", registry,
                "serves plain HTTP only but is not in %s; Docker will refuse to pull "
                "%d image(s) from it" % (INSECURE_PARAM, len(refs_))))
        else:
            out.append(findings.error(
                "image-exists", registry,
                "unreachable over HTTPS and plain HTTP; %d image(s) not checked" % len(refs_)))
    return out
