"""The plugin contract and its start-up cost."""
import json
import subprocess
import sys

from osc_cli import openstack

HEAVY = ("jinja2", "yaml", "requests", "heatclient", "docker", "kolla", "urllib3")


def test_command_modules_import_nothing_heavy():
    """openstack imports every command module of a loaded group on each run."""
    code = r"""
import importlib, json, sys
from importlib import metadata
eps = metadata.entry_points()
group = eps.select(group="openstack.tripleo_containers.v1") if hasattr(eps, "select") \
    else eps.get("openstack.tripleo_containers.v1", [])
import tripleo_containers.osc.plugin
loaded = []
for ep in group:
    ep.load()
    loaded.append(ep.name)
print(json.dumps({"loaded": loaded, "modules": sorted(sys.modules)}))
"""
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True, cwd="/").stdout)
    assert "overcloud_container_image_prepare" in out["loaded"]
    heavy = [m for m in out["modules"] if m.split(".")[0] in HEAVY]
    assert heavy == []


def test_openstack_lists_every_command_and_the_api_version_option():
    """What a user sees of the plugin contract: `openstack` finds the plugin,
    loads the v1 command group and documents the version option."""
    from importlib import metadata
    eps = metadata.entry_points()
    group = eps.select(group="openstack.tripleo_containers.v1") if hasattr(eps, "select") \
        else eps.get("openstack.tripleo_containers.v1", [])
    expected = sorted(ep.name.replace("_", " ") for ep in group)
    listed = openstack("help", "overcloud", "container", check=True).stdout.splitlines()
    assert sorted(line.strip() for line in listed if line.startswith("  ")) == expected
    helptext = openstack("--help", check=True).stdout
    assert "--os-tripleo-containers-api-version" in helptext
    assert "tripleo-containers API version, default=1" in helptext


def test_commands_need_no_keystone():
    env = {"OS_AUTH_URL": "", "OS_CLOUD": "", "OS_USERNAME": ""}
    proc = openstack("overcloud", "container", "image", "prepare", "--include", "keystone:",
                     "-f", "value", env=env, check=True)
    assert "keystone" in proc.stdout


def test_data_is_found_where_the_package_is_installed():
    import os
    import tripleo_containers
    from tripleo_containers import data
    pkg_parent = os.path.dirname(os.path.dirname(tripleo_containers.__file__))
    found = data.path("container-images")
    if os.path.isdir(os.path.join(pkg_parent, "container-images")):
        assert found == os.path.join(pkg_parent, "container-images")  # a checkout
    else:  # a plain pip install: <prefix>/share/tripleo-containers
        assert found == os.path.join(sys.prefix, "share", "tripleo-containers",
                                     "container-images")
    for name in ("overcloud_containers.yaml.j2", "overcloud_containers_defaults.yaml"):
        assert os.path.isfile(os.path.join(found, name))
    assert os.path.isfile(data.path("heat-templates", "roles_data.yaml"))


def test_standalone_script_runs_the_same_commands(tmp_path):
    from osc_cli import standalone
    out = tmp_path / "e.yaml"
    proc = standalone("image", "prepare", "--include", "keystone:",
                      "--push-destination", "192.168.24.1:8787", "--output-env-file", out,
                      "-f", "value")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "docker.io/tripleopike/centos-binary-keystone:current-tripleo", "192.168.24.1:8787"]
    assert "DockerKeystoneImage: 192.168.24.1:8787/" in out.read_text()
    bad = standalone("image", "prepare", "--set", "colour=red")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "--set: unknown key 'colour'; known keys: ceph_image, ceph_namespace, ceph_tag, "
        "name_prefix, name_suffix, namespace, neutron_driver, tag"]
    helptext = standalone("help").stdout
    for command in ("image prepare", "image upload", "environment validate",
                    "registry start", "image show"):
        assert command in helptext


def test_standalone_script_imports_no_openstackclient():
    code = ("import sys; from tripleo_containers import cli; "
            "cli.TripleoContainers().command_manager.find_command(['image', 'prepare']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('openstackclient', 'openstack', 'keystoneauth1') + %r))" % (HEAVY,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd="/").stdout.strip()
    assert out == "[]"
