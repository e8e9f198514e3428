"""The image catalog template and its renderer."""
import re

import pytest
import yaml

from tripleo_containers import exceptions
from tripleo_containers.prepare import catalog
from tripleo_containers.registry import reference

import os

# Pike's facts, carried in the tests so every clone checks them
PIKE = os.path.join(os.path.dirname(__file__), "data", "pike-image-services.yaml")


DELIBERATE_ADDITIONS = {"mariadb": {"OS::TripleO::Services::Clustercheck"}}


def names(entries):
    return [e["imagename"] for e in entries]


def test_defaults_render_every_pike_image():
    entries = catalog.Catalog().render({})
    assert len(entries) == 87
    assert "docker.io/tripleopike/centos-binary-keystone:current-tripleo" in names(entries)
    assert ("docker.io/ceph/daemon:v3.0.3-stable-3.0-jewel-centos-7-x86_64"
            in names(entries))
    for e in entries:
        reference.parse(e["imagename"])
        assert all(re.match(r"^Docker\w+(Image|Address)$", p) for p in e["params"])


def test_catalog_matches_pike_facts():
    """Every Pike image is in the catalog with the same services (params may
    have been reconciled with the templates, so they are checked elsewhere)."""
    with open(PIKE) as f:
        pike = yaml.safe_load(f)["pike_image_services"]
    assert len(pike) > 80
    rendered = {}
    for driver in ("default", "odl", "ovn"):
        for e in catalog.Catalog().render({"neutron_driver": driver}):
            rendered[e["imagename"]] = e
    for image, services in sorted(pike.items()):
        if image.startswith("CEPHNS"):
            name = "docker.io/ceph/daemon:v3.0.3-stable-3.0-jewel-centos-7-x86_64"
        else:
            name = "docker.io/tripleopike/centos-binary-%s:current-tripleo" % image
        assert name in rendered, image
        # Pike's services, plus where a template needs the image for a service
        # Pike forgot (clustercheck runs from the mariadb image).
        extra = set(rendered[name]["services"]) - set(services)
        assert set(services) <= set(rendered[name]["services"])
        assert extra <= DELIBERATE_ADDITIONS.get(image, set()), (image, extra)


@pytest.mark.parametrize("driver,present,absent", [
    ("default", "neutron-server:", "opendaylight"),
    ("ovn", "neutron-server:", "opendaylight"),
    ("odl", "neutron-server-opendaylight:", "neutron-server:"),
])
def test_neutron_driver_selects_images(driver, present, absent):
    text = " ".join(names(catalog.Catalog().render({"neutron_driver": driver})))
    assert present in text
    assert absent not in text


def test_values_drive_names():
    entries = catalog.Catalog().render({
        "namespace": "192.168.24.1:8787/master", "name_prefix": "rocky-",
        "name_suffix": "-x", "tag": "1.0", "ceph_namespace": "quay.io/ceph",
        "ceph_image": "daemon", "ceph_tag": "v4"})
    assert "192.168.24.1:8787/master/rocky-keystone-x:1.0" in names(entries)
    assert "quay.io/ceph/daemon:v4" in names(entries)


def write(tmp_path, text):
    p = tmp_path / "t.yaml.j2"
    p.write_text(text)
    return str(p)


def test_no_jinja_builtin_can_leak(tmp_path):
    """Pike's `namespace` fell through to jinja2's Namespace class."""
    t = write(tmp_path, "container_images_template:\n"
                        "- imagename: \"{{ namespace }}/x:{{ tag }}\"\n")
    c = catalog.Catalog(t)
    c.defaults.pop("namespace")
    with pytest.raises(exceptions.InputError) as e:
        c.render({})
    assert "'namespace' is undefined" in str(e.value)
    assert "--set" in str(e.value)
    t2 = write(tmp_path, "container_images_template:\n"
                         "- imagename: \"x/{{ range }}:1\"\n")
    with pytest.raises(exceptions.InputError, match="'range' is undefined"):
        catalog.Catalog(t2).render({})


def test_custom_template_variables_are_settable(tmp_path):
    t = write(tmp_path, "container_images_template:\n"
                        "- imagename: \"{{ namespace }}/{{ flavour }}:{{ tag }}\"\n")
    c = catalog.Catalog(t)
    c.check_keys({"flavour": "a"}, "--set")
    assert names(c.render({"flavour": "abc"})) == ["docker.io/tripleopike/abc:current-tripleo"]
    with pytest.raises(exceptions.InputError, match="unknown key 'flavor'"):
        c.check_keys({"flavor": "a"}, "--set")


@pytest.mark.parametrize("text,message", [
    ("container_images_template:\n- imagename: \"{{ tag \"\n", "syntax error at line 2"),
    ("container_images_template: {}\n", "container_images_template list"),
    ("container_images_template:\n- params: []\n", "entry 1 has no imagename"),
    ("container_images_template:\n- imagename: \"Bad/Name:1\"\n", "must be lowercase"),
    ("container_images_template: [\n", "not valid YAML"),
])
def test_bad_templates_name_the_file(tmp_path, text, message):
    t = write(tmp_path, text)
    with pytest.raises(exceptions.InputError) as e:
        catalog.Catalog(t).render({})
    assert message in str(e.value)
    assert t in str(e.value)


def test_missing_template_file(tmp_path):
    with pytest.raises(exceptions.InputError, match="template file .*nope.*cannot read"):
        catalog.Catalog(str(tmp_path / "nope.j2"))


TRAIN_DEFAULT_SET = {
    "namespace", "name_prefix", "name_suffix", "tag", "rhel_containers", "neutron_driver",
    "ceph_namespace", "ceph_image", "ceph_tag",
    "ceph_prometheus_namespace", "ceph_prometheus_image", "ceph_prometheus_tag",
    "ceph_alertmanager_namespace", "ceph_alertmanager_image", "ceph_alertmanager_tag",
    "ceph_node_exporter_namespace", "ceph_node_exporter_image", "ceph_node_exporter_tag",
    "ceph_grafana_namespace", "ceph_grafana_image", "ceph_grafana_tag"}


def test_train_catalog_takes_every_key_of_the_default_file():
    cat = catalog.Catalog(release="train")
    assert cat.variables == TRAIN_DEFAULT_SET
    assert set(cat.defaults) == TRAIN_DEFAULT_SET


@pytest.mark.parametrize("driver,count,neutron", [
    ("ovn", 102, "neutron-server-ovn"), ("odl", 98, "neutron-server-opendaylight"),
    ("other", 97, "neutron-server")])
def test_train_catalog_renders_train_names(driver, count, neutron):
    entries = catalog.Catalog(release="train").render({"neutron_driver": driver})
    assert len(entries) == count  # tripleo-common 11.5.0 renders the same numbers
    byname = {e["imagename"]: e for e in entries}
    ns = "docker.io/tripleotraincentos8/centos-binary-"
    assert byname[ns + neutron + ":current-tripleo"]["params"] == [
        "ContainerNeutronApiImage", "ContainerNeutronConfigImage"]
    for image in ("placement-api", "rsyslog", "keepalived", "novajoin-server",
                  "designate-api"):
        assert ns + image + ":current-tripleo" in byname, image
    assert "ContainerOctaviaDriverAgentImage" in byname[ns + "octavia-api:current-tripleo"][
        "params"]
    assert byname["quay.io/prometheus/node-exporter:v0.17.0"]["params"] == [
        "NodeExporterContainerImage"]
    for e in entries:
        reference.parse(e["imagename"])
        assert all(re.match(r"^(Container\w+Image|\w+ContainerImage)$", p)
                   for p in e["params"]), e
    rhel = catalog.Catalog(release="train").render({"neutron_driver": driver,
                                                    "rhel_containers": True})
    assert {e["imagename"] for e in entries} - {e["imagename"] for e in rhel} == {
        ns + "fluentd:current-tripleo", ns + "sensu-client:current-tripleo"}
