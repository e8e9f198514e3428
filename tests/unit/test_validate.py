"""The environment validator: the library on real files, the command via the real CLI."""
import os

import pytest
import yaml

from osc_cli import openstack
from tripleo_containers import data
from tripleo_containers.validate import validate

DOCKER = data.path("environments", "docker.yaml")
DOCKER_HA = data.path("environments", "docker-ha.yaml")


def _write(path, doc):
    with open(path, "w") as f:
        if isinstance(doc, str):
            f.write(doc)
        else:
            yaml.safe_dump(doc, f)
    return str(path)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """parameter_defaults that the real prepare writes for docker + docker-ha."""
    out = tmp_path_factory.mktemp("prepare") / "docker_registry.yaml"
    openstack("overcloud", "container", "image", "prepare", "-e", DOCKER, "-e", DOCKER_HA,
              "--push-destination", "192.168.24.1:8787", "--output-env-file", out,
              check=True)
    with open(out) as f:
        return yaml.safe_load(f)["parameter_defaults"]


def _env(tmp_path, params, name="registry.yaml"):
    return _write(tmp_path / name, {"parameter_defaults": params})


def _checks(found):
    return [(f.severity, f.check, f.subject) for f in found]


def test_prepare_output_passes_with_zero_findings(tmp_path, prepared):
    assert validate([DOCKER, DOCKER_HA, _env(tmp_path, prepared)]) == []


def test_cli_zero_findings_exits_zero(tmp_path, prepared):
    proc = openstack("overcloud", "container", "environment", "validate", "-e", DOCKER,
                     "-e", DOCKER_HA, "-e", _env(tmp_path, prepared), "-f", "value")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_cli_removed_image_parameter_fails_naming_it(tmp_path, prepared):
    params = dict(prepared)
    del params["DockerKeystoneImage"]
    proc = openstack("overcloud", "container", "environment", "validate", "-e", DOCKER,
                     "-e", DOCKER_HA, "-e", _env(tmp_path, params), "-f", "value")
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error parameter-unset DockerKeystoneImage "
                               "Property DockerKeystoneImage not assigned")
    assert "OS::TripleO::Services::Keystone on Controller" in lines[0]
    assert "1 error(s) and 0 warning(s)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_without_environments_is_a_one_line_error():
    proc = openstack("overcloud", "container", "environment", "validate")
    assert proc.returncode == 1
    assert "-e FILE" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_registry_path_is_one_finding(tmp_path, prepared):
    bad = _write(tmp_path / "extra.yaml", {"resource_registry": {
        "OS::TripleO::Services::Keystone": "./nowhere/keystone.yaml"}})
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, prepared), bad])
    assert _checks(found) == [("error", "registry-path", bad)]
    assert os.path.join(str(tmp_path), "nowhere", "keystone.yaml") in found[0].message


def test_wrong_top_level_section_is_one_finding(tmp_path, prepared):
    bad = _write(tmp_path / "typo.yaml", {"parameters_default": {"Foo": 1}})
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, prepared), bad])
    assert _checks(found) == [("error", "environment-section", bad)]
    assert '"parameters_default"' in found[0].message


def test_environment_with_invalid_yaml_names_the_line(tmp_path, prepared):
    bad = _write(tmp_path / "bad.yaml", "parameter_defaults:\n  A: 1\n B: [\n")
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, prepared), bad])
    assert _checks(found) == [("error", "environment-format", bad)]
    assert found[0].message.endswith("at line 3")


def test_referenced_file_with_invalid_yaml_is_one_finding(tmp_path, prepared):
    broken = _write(tmp_path / "broken.yaml", "heat_template_version: pike\noutputs: [\n")
    env = _write(tmp_path / "extra.yaml", {"resource_registry": {
        "OS::TripleO::Services::Unused": "./broken.yaml"}})
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, prepared), env])
    assert _checks(found) == [("error", "template-yaml", broken)]
    assert "not valid YAML" in found[0].message


def test_missing_nested_template_names_its_user(tmp_path, prepared):
    svc = _write(tmp_path / "svc.yaml", {
        "heat_template_version": "pike",
        "resources": {"Helper": {"type": "./helper.yaml"}},
        "outputs": {"role_data": {"value": {"service_name": "x"}}}})
    env = _write(tmp_path / "extra.yaml", {"resource_registry": {
        "OS::TripleO::Services::Sshd": "./svc.yaml"}})
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, prepared), env])
    assert _checks(found) == [("error", "template-missing", str(tmp_path / "helper.yaml"))]
    assert "used by %s" % svc in found[0].message


def test_ha_image_without_tag_is_an_error(tmp_path, prepared):
    params = dict(prepared, DockerMysqlImage="192.168.24.1:8787/tripleopike/centos-binary-mariadb")
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, params)])
    assert _checks(found) == [("error", "image-tag", "DockerMysqlImage")]
    assert "192.168.24.1:pcmklatest" in found[0].message
    # without docker-ha.yaml the same image is fine: nothing re-tags it
    assert validate([DOCKER, _env(tmp_path, params)]) == []


def test_plain_http_registry_must_be_listed(tmp_path, prepared):
    params = {k: v for k, v in prepared.items() if k != "DockerInsecureRegistryAddress"}
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, params)])
    assert _checks(found) == [("warning", "insecure-registry", "192.168.24.1:8787")]
    params["DockerInsecureRegistryAddress"] = "192.168.24.1:8787"  # comma string works too
    assert validate([DOCKER, DOCKER_HA, _env(tmp_path, params)]) == []
    params["DockerInsecureRegistryAddress"] = ["http://192.168.24.1:8787"]
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, params)])
    assert ("error", "insecure-registry", "DockerInsecureRegistryAddress") in _checks(found)


def test_public_tls_registry_needs_no_listing(tmp_path, prepared):
    params = {k: v.replace("192.168.24.1:8787", "quay.io") for k, v in prepared.items()
              if k != "DockerInsecureRegistryAddress"}
    assert validate([DOCKER, DOCKER_HA, _env(tmp_path, params)]) == []


def test_undeclared_image_parameter_is_a_warning_with_a_hint(tmp_path, prepared):
    params = dict(prepared, ContainerKeystoneImage="quay.io/x/keystone:1",
                  DockerKeystonImage="quay.io/x/keystone:1")
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, params)])
    assert _checks(found) == [("warning", "parameter-undeclared", "ContainerKeystoneImage"),
                              ("warning", "parameter-undeclared", "DockerKeystonImage")]
    assert "DockerKeystoneImage" in found[0].message


def test_only_roles_with_nodes_need_their_images(tmp_path, prepared):
    params = {k: v for k, v in prepared.items() if k != "DockerNovaLibvirtImage"}
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, params)])
    assert _checks(found) == [("error", "parameter-unset", "DockerNovaLibvirtImage")]
    params["ComputeCount"] = 0
    assert validate([DOCKER, DOCKER_HA, _env(tmp_path, params)]) == []


def test_nested_image_parameters_come_from_parameter_defaults(tmp_path, prepared):
    # ceph-mon declares no image itself; its nested ceph-base does
    env = _write(tmp_path / "ceph.yaml", {"resource_registry": {
        "OS::TripleO::Services::CephMon": os.path.join(
            data.path("heat-templates"), "docker/services/ceph-ansible/ceph-mon.yaml")}})
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, prepared), env])
    assert _checks(found) == [("error", "parameter-unset", "DockerCephDaemonImage")]
    params = dict(prepared, DockerCephDaemonImage="docker.io/ceph/daemon")
    found = validate([DOCKER, DOCKER_HA, _env(tmp_path, params), env])
    assert _checks(found) == [("error", "image-tag", "DockerCephDaemonImage")]


def test_roles_file_and_environment_directory(tmp_path, prepared):
    roles = _write(tmp_path / "roles.yaml", [
        {"name": "Controller", "CountDefault": 1,
         "ServicesDefault": ["OS::TripleO::Services::Keystone"]}])
    envdir = tmp_path / "envs"
    envdir.mkdir()
    _write(envdir / "a.yaml", {"parameter_defaults": {"DockerKeystoneConfigImage": "quay.io/k/k:1"}})
    found = validate([DOCKER], env_dirs=[str(envdir)], roles_file=roles)
    assert _checks(found) == [("error", "parameter-unset", "DockerKeystoneImage")]
