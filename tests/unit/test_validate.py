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


# A tree in the shape of the real tripleo-heat-templates (tests/unit/data/tht):
# docker/services/ templates nest puppet/services/ ones whose passwords and
# keys the deployment plan generates; Ntp stays on puppet, CinderBackup is
# OS::Heat::None, SensuClient needs a parameter nobody generates.
THT = os.path.join(os.path.dirname(__file__), "data", "tht")
THT_ROLES = os.path.join(THT, "roles_data.yaml")
THT_PUPPET = os.path.join(THT, "environments", "puppet-registry.yaml")
THT_DOCKER = os.path.join(THT, "environments", "docker.yaml")
THT_SENSU = os.path.join(THT, "environments", "sensu-client.yaml")
GENERATED = ["AdminPassword", "AdminToken", "CephClientKey", "CephClusterFSID",
             "KeystoneCredential0", "KeystoneFernetKeys", "MysqlClustercheckPassword",
             "NeutronPassword", "NovaPassword"]


@pytest.fixture(scope="module")
def tht_prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("tht") / "docker_registry.yaml"
    openstack("overcloud", "container", "image", "prepare", "-e", THT_PUPPET,
              "-e", THT_DOCKER, "-r", THT_ROLES, "--push-destination", "192.168.24.1:8787",
              "--output-env-file", out, check=True)
    return str(out)


def _validate_cli(*envs, roles=THT_ROLES):
    args = ["overcloud", "container", "environment", "validate", "-r", roles, "-f", "value"]
    for e in envs:
        args += ["-e", e]
    return openstack(*args)


def test_generated_passwords_are_assumed_supplied_and_counted(tht_prepared):
    proc = _validate_cli(THT_PUPPET, THT_DOCKER, tht_prepared)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("info parameter-supplied 9 parameter(s) ")
    assert "generated by the deployment plan" in lines[0]
    assert ", ".join(GENERATED) in lines[0]
    assert "no errors, 0 warning(s)" in proc.stderr


def test_image_parameter_still_an_error_on_a_real_shaped_tree(tmp_path, tht_prepared):
    with open(tht_prepared) as f:
        params = yaml.safe_load(f)["parameter_defaults"]
    del params["DockerKeystoneImage"]
    proc = _validate_cli(THT_PUPPET, THT_DOCKER, _env(tmp_path, params))
    assert proc.returncode == 1
    errors = [l for l in proc.stdout.splitlines() if l.startswith("error")]
    assert len(errors) == 1 and errors[0].startswith("error parameter-unset DockerKeystoneImage")
    assert proc.stderr.strip().splitlines()[-1] == (
        "1 error(s) and 0 warning(s): the deploy would fail; unset image parameters: "
        "rerun prepare with the same -e files and roles file and pass its "
        "--output-env-file to deploy")


def test_forgotten_docker_yaml_is_an_error_naming_the_cause(tht_prepared):
    proc = _validate_cli(THT_PUPPET, tht_prepared)
    assert proc.returncode == 1
    assert proc.stdout.startswith("error no-containers resource_registry no environment "
                                  "maps a service of a deployed role to a containerized")
    assert "add environments/docker.yaml" in proc.stderr
    assert "rerun prepare with the same -e files and roles" not in proc.stderr
    # the same with no registry at all (only the generated parameters)
    assert _validate_cli(tht_prepared).stdout.startswith("error no-containers")


def test_parameter_nobody_generates_has_its_own_hint(tht_prepared):
    proc = _validate_cli(THT_PUPPET, THT_DOCKER, THT_SENSU, tht_prepared)
    assert proc.returncode == 1
    errors = [l for l in proc.stdout.splitlines() if l.startswith("error")]
    assert [e.split()[1:3] for e in errors] == [
        ["parameter-required", "MonitoringRabbitPassword"],
        ["parameter-unset", "DockerSensuClientImage"],
        ["parameter-unset", "DockerSensuConfigImage"]]
    last = proc.stderr.strip().splitlines()[-1]
    assert "rerun prepare" in last and "set the other unset parameters" in last


def test_each_kind_of_finding_has_its_own_hint():
    from tripleo_containers.validate import findings
    hints = {check: findings.hints([findings.error(check, "x", "y")])
             for check in ("image-exists", "image-tag", "insecure-registry",
                           "parameter-unset", "parameter-required", "no-containers",
                           "registry-path", "environment-format")}
    assert all(len(h) == 1 for h in hints.values()), hints
    assert len({h[0] for h in hints.values()}) == len(hints)
    assert "image upload" in hints["image-exists"][0]
    assert "rerun prepare" not in hints["image-exists"][0] + hints["image-tag"][0]
    # warnings and notes alone give no remedy in the error summary
    assert findings.hints([findings.warning("insecure-registry", "x", "y")]) == []


def test_train_dashboard_image_parameters_are_image_parameters():
    from tripleo_containers.validate import templates
    assert templates.is_image_param("GrafanaContainerImage")
    assert templates.is_image_param("ContainerKeystoneImage")
    assert not templates.is_image_param("ContainerImagePrepare")


THT_TRAIN = os.path.join(THT, "environments", "train-registry.yaml")
TRAIN_CIP = os.path.join(THT, "containers-prepare-parameter.yaml")


@pytest.fixture(scope="module")
def train_prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "containers-default-parameters.yaml"
    openstack("overcloud", "container", "image", "prepare", "-e", THT_TRAIN,
              "-e", TRAIN_CIP, "-r", THT_ROLES, "--output-env-file", out, check=True)
    return str(out)


def test_train_tree_validates_with_what_the_plan_renders_and_sets(train_prepared):
    found = validate([THT_TRAIN, train_prepared], roles_file=THT_ROLES)
    assert _checks(found) == [("info", "parameter-supplied", "6 parameter(s)"),
                              ("info", "template-rendered", "2 template(s)")]
    assert found[0].message.endswith(
        "5 generated by the deployment plan (tripleo-common's Train passwords and keys: "
        "AdminPassword, KeystoneFernetKeys, MysqlRootPassword, NeutronPassword, "
        "NovaPassword); 1 set by openstack overcloud deploy or its plan (RootStackName)")
    assert found[1].message == (
        "not checked: the deployment plan renders them from their .j2.yaml (%s, %s)"
        % (os.path.join(THT, "common", "post.yaml"),
           os.path.join(THT, "puppet", "controller-role.yaml")))


def test_train_image_parameter_missing_is_still_an_error(tmp_path, train_prepared):
    with open(train_prepared) as f:
        params = yaml.safe_load(f)["parameter_defaults"]
    del params["ContainerMysqlImage"]
    found = validate([THT_TRAIN, _env(tmp_path, params)], roles_file=THT_ROLES)
    assert [c for c in _checks(found) if c[0] == "error"] == [
        ("error", "parameter-unset", "ContainerMysqlImage")]
