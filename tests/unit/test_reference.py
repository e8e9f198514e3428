"""The one reference parser: good and bad tables."""
import pytest

from tripleo_containers.registry import reference

D = "sha256:" + "a" * 64

GOOD = [
    # text -> (registry, repository, tag, digest, api_host)
    ("nova", ("docker.io", "library/nova", None, None, "registry-1.docker.io")),
    ("nova:latest", ("docker.io", "library/nova", "latest", None, "registry-1.docker.io")),
    ("tripleopike/centos-binary-nova-api:current-tripleo",
     ("docker.io", "tripleopike/centos-binary-nova-api", "current-tripleo", None,
      "registry-1.docker.io")),
    ("docker.io/tripleopike/x:1", ("docker.io", "tripleopike/x", "1", None,
                                   "registry-1.docker.io")),
    ("index.docker.io/a/b", ("docker.io", "a/b", None, None, "registry-1.docker.io")),
    ("registry-1.docker.io/a", ("docker.io", "library/a", None, None,
                                "registry-1.docker.io")),
    ("192.168.24.1:8787/tripleopike/centos-binary-nova-api:current-tripleo",
     ("192.168.24.1:8787", "tripleopike/centos-binary-nova-api", "current-tripleo", None,
      "192.168.24.1:8787")),
    ("localhost/x", ("localhost", "x", None, None, "localhost")),
    ("localhost:5000/x:y", ("localhost:5000", "x", "y", None, "localhost:5000")),
    ("quay.io/a/b/c/d:v1.2-3_x", ("quay.io", "a/b/c/d", "v1.2-3_x", None, "quay.io")),
    ("[::1]:5000/ns/x", ("[::1]:5000", "ns/x", None, None, "[::1]:5000")),
    ("my-host.example.com/ns/x@" + D, ("my-host.example.com", "ns/x", None, D,
                                       "my-host.example.com")),
    ("h:1/ns/x:t@" + D, ("h:1", "ns/x", "t", D, "h:1")),
    # a first component without '.', ':' or localhost is a namespace (Pike's bug)
    ("undercloud/ns/x", ("docker.io", "undercloud/ns/x", None, None, "registry-1.docker.io")),
    ("a__b/c.d/e-f--g", ("docker.io", "a__b/c.d/e-f--g", None, None, "registry-1.docker.io")),
    ("x:" + "t" * 128, ("docker.io", "library/x", "t" * 128, None, "registry-1.docker.io")),
    ("h:5000/x:5000", ("h:5000", "x", "5000", None, "h:5000")),
    # like Docker: without a '/', "host:port" is a name and a tag
    ("h.example:5000", ("docker.io", "library/h.example", "5000", None,
                        "registry-1.docker.io")),
]

BAD = [
    ("", "empty"),
    (" nova", "white space"),
    ("nova latest", "white space"),
    ("Nova", "lowercase"),
    ("h:5000/NS/x", "lowercase"),
    ("ns//x", "components"),
    ("ns/x/", "components"),
    ("-ns/x", "components"),
    ("ns/x_", "components"),
    ("ns/x___y", "components"),
    ("x:.tag", "tag"),
    ("x:-tag", "tag"),
    ("x:" + "t" * 129, "tag"),
    ("x:t!", "tag"),
    ("x@sha256:abc", "not algorithm:hex"),
    ("x@sha256:" + "a" * 63, "64 hex"),
    ("x@sha256:" + "a" * 65, "64 hex"),
    ("x@sha256:" + "A" * 64, "lowercase hex"),
    ("x@" + "a" * 64, "digest"),
    ("h:99999/x", "registry host"),
    ("h:0/x", "registry host"),
    ("-h.example/x", "'-h.example' is not a registry host"),
    ("h.example/", "no repository"),
    ("h.example/" + "a" * 260, "longer than"),
]


@pytest.mark.parametrize("text,expected", GOOD)
def test_good(text, expected):
    ref = reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest, ref.api_host) == expected
    # canonical form round-trips
    assert reference.parse(str(ref)) == ref


@pytest.mark.parametrize("text,reason", BAD)
def test_bad(text, reason):
    with pytest.raises(reference.InvalidReference) as exc:
        reference.parse(text)
    assert reason in str(exc.value)


def test_identifier_and_helpers():
    ref = reference.parse("h:1/ns/x:t@" + D)
    assert ref.identifier == D
    assert reference.parse("h:1/ns/x").identifier == "latest"
    assert reference.parse("h:1/ns/x:t").identifier == "t"
    assert str(ref.with_registry("docker.io")) == "docker.io/ns/x:t@" + D
    assert ref.with_tag("u").digest is None and ref.with_digest(D).tag is None
    assert ref.name == "h:1/ns/x"
    with pytest.raises(reference.InvalidReference):
        ref.with_registry("bad host")
    with pytest.raises(AttributeError):
        ref.tag = "x"


def test_default_registry_and_push_target():
    assert reference.parse("ns/x", default_registry="r:5000").name == "r:5000/ns/x"
    assert reference.parse("nova", default_registry="r:5000").repository == "nova"
    target = reference.push_target("docker.io/tripleopike/nova-api:current", "192.168.24.1:8787")
    assert str(target) == "192.168.24.1:8787/tripleopike/nova-api:current"


def test_non_string_is_invalid():
    with pytest.raises(reference.InvalidReference):
        reference.parse(None)


@pytest.mark.parametrize("tag,floating", [
    ("latest", True), (None, True), ("current-tripleo", True), ("pike", True),
    ("tripleo-ci-testing", True), ("17.0.0-3", False), ("v3.0.3", False),
    ("2026-01-01.1", False),
])
def test_is_floating(tag, floating):
    assert reference.is_floating(tag) is floating


@pytest.mark.parametrize("text", [
    "192.168.24.1:8787", "localhost", "localhost:5000", "[fd00::1]:8787",
    "registry.example.com", "undercloud.ctlplane:8787",
])
def test_parse_registry_accepts_addresses(text):
    assert reference.parse_registry(text, "--registry") == text


@pytest.mark.parametrize("text", [
    "a b", "a/b", "host:0", "host:65536", "http://host:8787", "", None, 8787,
])
def test_parse_registry_refuses_non_addresses_naming_the_origin(text):
    with pytest.raises(reference.InvalidReference) as exc:
        reference.parse_registry(text, "--registry")
    assert str(exc.value).startswith("--registry %r is not a registry address" % (text,))
