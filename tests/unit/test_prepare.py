"""prepare's core: service filter, strategies, parameters, insecure registries."""
import os

import pytest

from tripleo_containers import exceptions
from tripleo_containers.prepare import core
from tripleo_containers.prepare import environments
from tripleo_containers.prepare import output

DATA = os.path.join(os.path.dirname(__file__), "data")
DOCKER = os.path.join(DATA, "pike-docker.yaml")
DOCKER_HA = os.path.join(DATA, "pike-docker-ha.yaml")
KEYSTONE = "docker.io/tripleopike/centos-binary-keystone:current-tripleo"


def env(tmp_path, text, name="env.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def run(**kw):
    return core.prepare(core.Request(**kw))


def names(result):
    return [i.imagename for i in result.images]


def test_no_environment_keeps_whole_catalog():
    r = run()
    assert len(r.images) == 87
    assert r.params["DockerKeystoneImage"] == KEYSTONE
    assert r.insecure == []
    assert all(i.push_destination is None for i in r.images)


def test_service_filter_default_roles():
    r = run(env_files=[DOCKER, DOCKER_HA], push_destination="192.168.24.1:8787")
    got = set(names(r))
    assert KEYSTONE in got
    # enabled but not containerized by Pike's docker.yaml
    assert not any("ironic" in n or "ceph" in n or "sahara" in n for n in got)
    # containerized but on no deployed role: none in the default roles
    assert "docker.io/tripleopike/centos-binary-nova-compute:current-tripleo" in got
    assert r.params["DockerKeystoneImage"] == (
        "192.168.24.1:8787/tripleopike/centos-binary-keystone:current-tripleo")
    assert r.insecure == ["192.168.24.1:8787"]
    assert all(i.push_destination == "192.168.24.1:8787" for i in r.images)
    # every parameter points at the push destination
    assert all(v.startswith("192.168.24.1:8787/") for v in r.params.values())


def test_role_counts_and_services_from_parameter_defaults(tmp_path):
    counts = env(tmp_path, "parameter_defaults:\n  ComputeCount: 0\n")
    r = run(env_files=[DOCKER, counts])
    assert not any("nova-compute" in n or "nova-libvirt" in n for n in names(r))
    svc = env(tmp_path, "parameter_defaults:\n  ControllerServices:\n"
                        "  - OS::TripleO::Services::Keystone\n  ComputeCount: 0\n", "s.yaml")
    r = run(env_files=[DOCKER, svc])
    assert names(r) == [KEYSTONE]


def test_neutron_driver_follows_enabled_services(tmp_path):
    odl = env(tmp_path, "resource_registry:\n  OS::TripleO::Services::OpenDaylightApi:"
                        " ../docker/services/opendaylight-api.yaml\n")
    r = run(env_files=[DOCKER, odl])
    assert any(n.endswith("opendaylight:current-tripleo") for n in names(r))
    assert any("neutron-server-opendaylight" in n for n in names(r))
    assert not any(n.endswith("neutron-server:current-tripleo") for n in names(r))
    # an explicit value wins over the derived one
    r = run(env_files=[DOCKER, odl], values={"neutron_driver": "default"})
    assert not any("opendaylight" in n for n in names(r))


def test_missing_roles_file_is_an_error(tmp_path):
    with pytest.raises(exceptions.InputError, match="roles file .*nope.*cannot read"):
        run(env_files=[DOCKER], roles_file=str(tmp_path / "nope.yaml"))
    empty = env(tmp_path, "", "roles.yaml")
    with pytest.raises(exceptions.InputError, match="non-empty list of roles"):
        run(env_files=[DOCKER], roles_file=empty)


@pytest.mark.parametrize("text,message", [
    ("paramter_defaults: {}\n", 'wrong section "paramter_defaults"'),
    ("- a\n- b\n", "not a valid YAML mapping"),
    ("resource_registry: [1]\n", "resource_registry must be a mapping"),
    ("parameter_defaults: {a: [}\n", "environment file"),
])
def test_bad_environments(tmp_path, text, message):
    bad = env(tmp_path, text)
    with pytest.raises(exceptions.InputError) as e:
        run(env_files=[bad])
    assert message in str(e.value)
    assert bad in str(e.value)


def test_environment_directory_before_files(tmp_path):
    d = tmp_path / "envs"
    d.mkdir()
    (d / "b.yaml").write_text("parameter_defaults: {ComputeCount: 3}\n")
    (d / "a.yaml").write_text("parameter_defaults: {ComputeCount: 2}\n")
    last = env(tmp_path, "parameter_defaults: {ComputeCount: 0}\n")
    merged, files = environments.load([last], [str(d)])
    assert [os.path.basename(f) for f in files] == ["a.yaml", "b.yaml", "env.yaml"]
    assert merged["parameter_defaults"]["ComputeCount"] == 0


def test_relative_registry_paths_resolve_against_their_file(tmp_path):
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    p = env(sub, "resource_registry:\n  OS::X: ../t/x.yaml\n  OS::Y: OS::Heat::None\n")
    merged = environments.parse_file(p)
    assert merged["resource_registry"]["OS::X"] == str(tmp_path / "a" / "t" / "x.yaml")
    assert merged["resource_registry"]["OS::Y"] == "OS::Heat::None"


def test_container_image_prepare_strategies(tmp_path):
    cip = env(tmp_path, """
parameter_defaults:
  ContainerImagePrepare:
  - set: {namespace: quay.io/a, tag: t1}
    push_destination: 10.0.0.1:8787
  - set: {namespace: quay.io/b, tag: t2}
    includes: [keystone]
    push_destination: true
""")
    r = run(env_files=[cip], release="pike")
    assert r.params["DockerKeystoneImage"].endswith("/b/centos-binary-keystone:t2")
    assert r.params["DockerKeystoneImage"].startswith("localhost:8787/") or \
        r.params["DockerKeystoneImage"].split("/")[0].endswith(":8787")
    assert r.params["DockerGlanceApiImage"] == \
        "10.0.0.1:8787/a/centos-binary-glance-api:t1"
    assert "quay.io/a/centos-binary-glance-api:t1" in names(r)
    assert "quay.io/b/centos-binary-keystone:t2" in names(r)


@pytest.mark.parametrize("value,message", [
    ("{set: {tag: x}}", "must be a list of mappings"),
    ("[a, b]", "must be a list of mappings"),
    ("[{sett: {}}]", "unknown key sett"),
    ("[{set: {colour: red}}]", "unknown key 'colour'"),
    ("[{includes: ['(']}]", "includes '(' is not a valid regular expression"),
    ("[{push_destination: 'not a host/x'}]", "is not a registry address"),
])
def test_bad_container_image_prepare(tmp_path, value, message):
    cip = env(tmp_path, "parameter_defaults:\n  ContainerImagePrepare: %s\n" % value)
    with pytest.raises(exceptions.InputError) as e:
        run(env_files=[cip])
    assert message in str(e.value)


def test_include_exclude_and_scheme():
    r = run(includes=["nova-"], excludes=["nova-compute"], scheme="container")
    assert names(r) and all("nova-" in n and "nova-compute" not in n for n in names(r))
    assert "ContainerNovaApiImage" in r.params
    assert not any(p.startswith("Docker") for p in r.params)


def test_insecure_registry_rules():
    r = run(includes=["keystone"], push_destination="reg.example:443",
            push_destination_tls=True)
    assert r.insecure == []
    r = run(includes=["keystone"], insecure_registries=["docker.io"])
    assert r.insecure == ["docker.io"]
    r = run(includes=["keystone"], insecure_registries=["unused:5000"])
    assert r.insecure == []
    with pytest.raises(exceptions.InputError, match="--insecure-registry 'a b'"):
        run(insecure_registries=["a b"])


def test_ipv6_push_destination():
    r = run(includes=["keystone"], push_destination="[fd00:1::1]:8787")
    assert r.params["DockerKeystoneImage"] == (
        "[fd00:1::1]:8787/tripleopike/centos-binary-keystone:current-tripleo")


def test_default_push_destination_from_undercloud(monkeypatch):
    from tripleo_containers.registry import undercloud
    # each step below is a different host: forget the per-process answer
    forget = undercloud.default_push_destination.cache_clear
    forget()
    monkeypatch.setattr(undercloud, "_ipv4_of", lambda i: None)
    monkeypatch.setattr(undercloud, "_ipv6_of", lambda i: "fd00:24::1")
    assert undercloud.default_push_destination() == "[fd00:24::1]:8787"
    forget()
    monkeypatch.setattr(undercloud, "_ipv4_of", lambda i: "192.168.24.1")
    r = run(includes=["keystone"], push_destination=True)
    assert r.images[0].push_destination == "192.168.24.1:8787"
    forget()
    monkeypatch.setattr(undercloud, "_ipv4_of", lambda i: None)
    monkeypatch.setattr(undercloud, "_ipv6_of", lambda i: None)
    monkeypatch.setattr(undercloud, "_resolvable", lambda n: False)
    assert undercloud.default_push_destination() == "localhost:8787"
    forget()


def test_ipv6_from_proc(tmp_path):
    from tripleo_containers.registry import undercloud
    f = tmp_path / "if_inet6"
    f.write_text("fe800000000000000000000000000001 05 40 20 80 br-ctlplane\n"
                 "fd000000000000240000000000000001 05 40 00 80 br-ctlplane\n")
    assert undercloud._ipv6_of("br-ctlplane", str(f)) == "fd00:0:0:24::1"


def test_golden_env_and_images_files():
    import datetime
    r = run(env_files=[DOCKER, DOCKER_HA], push_destination="192.168.24.1:8787")
    now = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    text = output.env_file(r, "openstack overcloud container image prepare X", now)
    golden = os.path.join(DATA, "golden-docker_registry.yaml")
    images_golden = os.path.join(DATA, "golden-overcloud_containers.yaml")
    if os.environ.get("REGEN_GOLDEN"):
        open(golden, "w").write(text)
        open(images_golden, "w").write(output.images_file(r))
    assert text == open(golden).read()
    assert output.images_file(r) == open(images_golden).read()


def test_selecting_nothing_is_an_error():
    with pytest.raises(exceptions.InputError, match="no images selected"):
        run(includes=["no-such-image"])


def test_kolla_ansible_globals():
    r = run(values={"namespace": "quay.io/openstack.kolla", "name_prefix": "",
                    "tag": "2024.1-rocky-9"}, push_destination="192.168.24.1:8787")
    import yaml
    g = yaml.safe_load(output.kolla_globals(r))
    assert g == {"docker_registry": "192.168.24.1:8787", "docker_registry_insecure": True,
                 "docker_namespace": "openstack.kolla", "docker_image_name_prefix": "",
                 "openstack_release": "2024.1-rocky-9", "openstack_tag": "2024.1-rocky-9"}
    # the snippet names exactly the images prepare pushed
    name = "%s/%s/%skeystone:%s" % (g["docker_registry"], g["docker_namespace"],
                                     g["docker_image_name_prefix"], g["openstack_tag"])
    assert r.params["DockerKeystoneImage"] == name
    r = run(values={"name_suffix": "-x"})
    with pytest.raises(exceptions.InputError, match="no image name suffix"):
        output.kolla_globals(r)


def test_kolla_globals_refuse_mixed_strategies(tmp_path):
    cip = env(tmp_path, "parameter_defaults:\n  ContainerImagePrepare:\n"
                        "  - set: {tag: a}\n  - set: {tag: b}\n    includes: [nova]\n")
    with pytest.raises(exceptions.InputError, match="use 2"):
        output.kolla_globals(run(env_files=[cip]))


def test_merge_agrees_with_heatclient():
    import copy
    from heatclient.common import template_utils
    layers = [
        {"resource_registry": {"OS::A": "/a.yaml", "OS::B": "/b.yaml"},
         "parameter_defaults": {"ComputeCount": 1, "Nested": {"x": 1, "y": [1]}}},
        {"resource_registry": {"OS::B": "OS::Heat::None"},
         "parameter_defaults": {"ComputeCount": 0, "Nested": {"y": [2], "z": None},
                                "ControllerServices": ["OS::X"]}},
        {"parameter_defaults": {"Nested": None, "ComputeCount": None}},
    ]
    ours, theirs = {}, {}
    for layer in layers:
        environments.merge(ours, copy.deepcopy(layer))
        template_utils.deep_update(theirs, copy.deepcopy(layer))
        assert ours == theirs
    # where heatclient would raise TypeError, a mapping replaces the list
    environments.merge(ours, {"parameter_defaults": {"ControllerServices": {"a": 1}}})
    assert ours["parameter_defaults"]["ControllerServices"] == {"a": 1}


@pytest.mark.parametrize("prefix,suffix,expected", [
    ("os", "foo", "docker.io/tripleopike/os-aodh-api-foo:current-tripleo"),
    ("os-", "-foo", "docker.io/tripleopike/os-aodh-api-foo:current-tripleo"),
    ("centos-binary-", "", "docker.io/tripleopike/centos-binary-aodh-api:current-tripleo"),
    ("", "", "docker.io/tripleopike/aodh-api:current-tripleo"),
])
def test_prefix_and_suffix_get_their_separator(prefix, suffix, expected):
    # Pike's catalog and Train's kolla_builder: os -> os-, foo -> -foo
    r = run(values={"name_prefix": prefix, "name_suffix": suffix}, includes=["aodh-api"])
    assert names(r) == [expected]
    assert r.params["DockerAodhApiImage"] == expected


def test_container_image_prepare_set_prefix_gets_its_separator(tmp_path):
    cip = env(tmp_path, "parameter_defaults:\n  ContainerImagePrepare:\n"
                        "  - set: {name_prefix: rhosp13/openstack, name_suffix: x}\n"
                        "    includes: [keystone]\n")
    r = run(env_files=[cip], release="pike")
    assert names(r) == ["docker.io/tripleopike/rhosp13/openstack-keystone-x:current-tripleo"]


# Train: the fixture tree's Train-shaped registry and the default
# containers-prepare-parameter.yaml (every key of the real one). Expected
# values are what tripleo-common 11.5.0's container_images_prepare_multi
# gives for the same files, run offline.
THT = os.path.join(DATA, "tht")
THT_ROLES = os.path.join(THT, "roles_data.yaml")
TRAIN_CIP = os.path.join(THT, "containers-prepare-parameter.yaml")
TRAIN_REGISTRY = os.path.join(THT, "environments", "train-registry.yaml")
TRAIN_NS = "192.168.24.1:8787/tripleotrain/centos-binary-"


class NoRegistry(object):
    """A client that must not be used: tag_from_label is skipped when set.tag is given."""

    def __getattr__(self, name):
        raise AssertionError("registry used: %s" % name)


@pytest.fixture
def undercloud_at(monkeypatch):
    from tripleo_containers.registry import undercloud
    monkeypatch.setattr(undercloud, "default_push_destination", lambda: "192.168.24.1:8787")


def test_train_default_file_gives_train_parameters(undercloud_at):
    r = run(env_files=[TRAIN_REGISTRY, TRAIN_CIP], roles_file=THT_ROLES, client=NoRegistry())
    assert r.release == "train"
    image = {
        "ContainerClustercheckConfigImage": "mariadb", "ContainerClustercheckImage": "mariadb",
        "ContainerKeystoneConfigImage": "keystone", "ContainerKeystoneImage": "keystone",
        "ContainerMysqlClientConfigImage": "mariadb", "ContainerMysqlConfigImage": "mariadb",
        "ContainerMysqlImage": "mariadb",
        # Train's default neutron driver is ovn
        "ContainerNeutronApiImage": "neutron-server-ovn",
        "ContainerNeutronConfigImage": "neutron-server-ovn",
        "ContainerNovaComputeImage": "nova-compute",
        "ContainerNovaLibvirtConfigImage": "nova-compute"}
    assert r.params == {p: TRAIN_NS + i + ":current-tripleo" for p, i in image.items()}
    assert r.insecure == ["192.168.24.1:8787"]
    # without a registry nothing is OS::Heat::None: every enabled service counts
    r = run(env_files=[TRAIN_CIP], roles_file=THT_ROLES, client=NoRegistry())
    assert {"ContainerCinderBackupImage", "ContainerSensuClientImage"} <= set(r.params)


def test_train_keeps_what_pikes_rule_drops(undercloud_at):
    # mysql-pacemaker-puppet.yaml is no '-container' template: Pike's rule
    # drops MySQL, Train's keeps every enabled service not OS::Heat::None
    train = run(env_files=[TRAIN_REGISTRY], roles_file=THT_ROLES, release="train")
    pike = run(env_files=[TRAIN_REGISTRY], roles_file=THT_ROLES, release="pike")
    assert "ContainerMysqlImage" in train.params
    assert "DockerMysqlImage" not in pike.params and "DockerKeystoneImage" in pike.params


def test_train_push_destination_true_uses_local_container_registry(tmp_path, undercloud_at):
    lcr = env(tmp_path, "parameter_defaults:\n  LocalContainerRegistry: 192.168.24.2\n")
    r = run(env_files=[TRAIN_REGISTRY, TRAIN_CIP, lcr], roles_file=THT_ROLES,
            client=NoRegistry())
    assert r.params["ContainerKeystoneImage"] == \
        "192.168.24.2:8787/tripleotrain/centos-binary-keystone:current-tripleo"
    assert {i.push_destination for i in r.images} == {"192.168.24.2:8787"}


@pytest.mark.parametrize("drivers,image", [
    (None, "neutron-server-ovn"),
    ("[openvswitch]", "neutron-server"),
    ("[opendaylight_v2]", "neutron-server-opendaylight"),
    ("ovn,sriovnicswitch", "neutron-server-ovn"),
])
def test_train_neutron_driver_from_mechanism_drivers(tmp_path, drivers, image):
    text = "parameter_defaults:\n  ContainerImagePrepare:\n  - set: {tag: t}\n"
    if drivers:
        text += "  NeutronMechanismDrivers: %s\n" % drivers
    r = run(env_files=[TRAIN_REGISTRY, env(tmp_path, text)], roles_file=THT_ROLES)
    assert r.params["ContainerNeutronApiImage"] == \
        "docker.io/tripleotraincentos8/centos-binary-%s:t" % image


def test_container_image_prepare_includes_win_over_excludes(tmp_path):
    cip = env(tmp_path, "parameter_defaults:\n  ContainerImagePrepare:\n"
                        "  - includes: [nova-api, keystone]\n    excludes: [nova]\n")
    r = run(env_files=[cip])
    assert sorted(names(r)) == [
        "docker.io/tripleotraincentos8/centos-binary-%s:current-tripleo" % n
        for n in ("barbican-keystone-listener", "keystone", "nova-api")]


@pytest.mark.parametrize("key", ["modify_role", "modify_vars", "modify_only_with_labels",
                                 "modify_only_with_source", "modify_append_tag"])
def test_image_modification_keys_are_refused_as_not_supported(tmp_path, key):
    cip = env(tmp_path, "parameter_defaults:\n  ContainerImagePrepare:\n"
                        "  - set: {tag: t}\n    %s: x\n" % key)
    with pytest.raises(exceptions.InputError) as e:
        run(env_files=[cip])
    message = str(e.value)
    assert message.startswith("environment file %s: ContainerImagePrepare entry 1: %s "
                              "is not supported" % (cip, key))
    assert "image modification with Ansible" in message
    assert "unknown key" not in message and "\n" not in message


def test_release_inferred_and_chosen():
    assert run(includes=["keystone"]).release == "pike"
    r = run(includes=["^docker.io/tripleotraincentos8/centos-binary-keystone:"],
            release="train")
    assert r.params == {
        "ContainerKeystoneImage": "docker.io/tripleotraincentos8/centos-binary-keystone:"
                                  "current-tripleo",
        "ContainerKeystoneConfigImage": "docker.io/tripleotraincentos8/centos-binary-"
                                        "keystone:current-tripleo"}
    # the Ceph dashboard parameters have their own names; a docker scheme
    # renames only Container<X>Image
    r = run(includes=["grafana", "keystone:"], release="train", scheme="docker")
    assert sorted(r.params) == ["DockerKeystoneConfigImage", "DockerKeystoneImage",
                                "GrafanaContainerImage"]
    with pytest.raises(exceptions.InputError, match="--release 'queens'"):
        run(release="queens")


def test_train_set_keys_are_refused_by_the_pike_catalog(tmp_path):
    with pytest.raises(exceptions.InputError) as e:
        run(env_files=[TRAIN_CIP], release="pike")
    assert "unknown key 'ceph_alertmanager_image'" in str(e.value)
    assert str(e.value).endswith("keys of the Train catalog: use --release train")


def test_train_default_roles_when_no_roles_file(undercloud_at):
    # tripleo-common 11.5.0 gives 148 parameters for the default file alone
    # with stable/train's roles_data.yaml (no registry: nothing is disabled)
    r = run(env_files=[TRAIN_CIP], client=NoRegistry())
    assert len(r.params) == 148
    assert r.params["ContainerNeutronApiImage"] == TRAIN_NS + "neutron-server-ovn:current-tripleo"
    # enabled in the default roles, and no registry maps it to OS::Heat::None
    assert "ContainerOctaviaApiImage" in r.params
    assert "ContainerOpendaylightApiImage" not in r.params
