"""Keychain: which files, which wins, what is remembered (never the secret)."""
import base64
import json

import pytest

from tripleo_containers import exceptions
from tripleo_containers.registry import credentials, errors


def _auth_file(path, mapping):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": dict(
        (host, {"auth": base64.b64encode(("%s:%s" % pair).encode()).decode()})
        for host, pair in mapping.items())}))
    return str(path)


def test_docker_config_and_auth_json_and_precedence(tmp_path):
    docker = _auth_file(tmp_path / "docker" / "config.json", {
        "https://index.docker.io/v1/": ("hub", "hubpw"),
        "reg:5000": ("docker-user", "dpw"),
        "https://only-docker.example/v2/": ("d2", "pw2")})
    auth_json = _auth_file(tmp_path / "auth.json", {"reg:5000": ("podman-user", "ppw")})
    env = {"DOCKER_CONFIG": str(tmp_path / "docker"), "REGISTRY_AUTH_FILE": auth_json}
    kc = credentials.Keychain(env=env)
    assert kc.resolve("reg:5000").username == "podman-user"
    assert kc.resolve("reg:5000").source == auth_json
    assert kc.resolve("docker.io").username == "hub"
    assert kc.resolve("registry-1.docker.io").source == docker
    assert kc.resolve("only-docker.example").username == "d2"
    assert kc.resolve("unknown:1") is None
    explicit = credentials.Keychain(explicit={"reg:5000": ("x", "xpw")},
                                    explicit_source="creds.yaml", env=env)
    assert explicit.resolve("reg:5000").source == "creds.yaml"
    assert "xpw" not in repr(explicit.resolve("reg:5000"))


def test_xdg_runtime_auth_json_when_no_registry_auth_file(tmp_path):
    path = _auth_file(tmp_path / "run" / "containers" / "auth.json", {"r:1": ("u", "p")})
    kc = credentials.Keychain(env={"XDG_RUNTIME_DIR": str(tmp_path / "run"),
                                   "HOME": str(tmp_path)})
    assert kc.resolve("r:1").source == path
    assert kc.searched == [path]


def test_mapping_file_yaml_json_and_heat_env(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("r:5000: {admin: s3cret}\n")
    assert credentials.load_mapping_file(str(f)) == {"r:5000": ("admin", "s3cret")}
    f.write_text(json.dumps({"parameter_defaults": {
        "ContainerImageRegistryCredentials": {"docker.io": {"me": "pw"}}}}))
    assert credentials.load_mapping_file(str(f)) == {"docker.io": ("me", "pw")}


@pytest.mark.parametrize("text", [
    "- a\n- b\n", "r:1: [u, p]\n", "r:1: {a: b, c: d}\n", "r:1: {[x: 1\n"])
def test_bad_mapping_files_are_input_errors_naming_the_file(tmp_path, text):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(exceptions.InputError) as exc:
        credentials.load_mapping_file(str(f))
    assert str(f) in str(exc.value)


def test_missing_mapping_file(tmp_path):
    with pytest.raises(credentials.CredentialsFileError) as exc:
        credentials.Keychain.from_file(str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in str(exc.value)


def test_redaction():
    url = ("https://user:pw@s3.example/blobs/x?X-Amz-Signature=abc&X-Amz-Credential=k"
           "&digest=sha256:1&_state=zzz&token=t0k")
    out = errors.redact_url(url)
    for secret in ("pw", "abc", "zzz", "t0k", "=k"):
        assert secret not in out.replace("https", "")
    assert "digest=sha256:1" in out and out.startswith("https://***@s3.example/blobs/x?")
    assert errors.redact_text("got Bearer abc.def and Basic dXNlcjpwdw==, pw hunter22",
                              ["hunter22"]) == "got Bearer *** and Basic ***, pw ***"


def test_undecodable_entries_are_named_not_hidden(tmp_path):
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {
        "broken:1": {"auth": "not base64!"},
        "nouser:1": {"auth": base64.b64encode(b":pw").decode()},
        "https://index.docker.io/v1/": {"auth": "%%%"},
        "docker.io": {"auth": base64.b64encode(b"hub:pw").decode()},
        "helper:1": {"identitytoken": "x"}}}))
    kc = credentials.Keychain(files=[str(path), str(tmp_path / "none.json")])
    assert kc.searched == [str(path)]
    assert kc.describe("broken:1") == (
        "none usable: %s has an entry 'broken:1' whose auth is not base64 of "
        "user:password; fix or remove it (e.g. log in again)" % path)
    assert "'nouser:1'" in kc.describe("nouser:1")
    # a usable entry for the same registry wins over a broken spelling of it
    assert kc.resolve("docker.io").username == "hub" and kc.describe("docker.io") == str(path)
    assert kc.describe("helper:1") == "none found (searched: %s)" % path
    assert kc.describe("other:1") == "none found (searched: %s)" % path
