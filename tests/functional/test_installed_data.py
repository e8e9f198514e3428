"""README "Using it" from an empty directory: the relative -e paths of the
README are found in the installed data folders, and each command says which
file it used. Under tox the package is a plain (non-editable) install, so
these are the files under <prefix>/share/tripleo-containers/."""
import os
import subprocess
import sys

import yaml

from osc_cli import openstack
from tripleo_containers import data

README_ENVS = ["-e", "environments/docker.yaml", "-e", "environments/docker-ha.yaml"]


def test_readme_commands_work_from_an_empty_directory(tmp_path):
    prep = openstack(
        "overcloud", "container", "image", "prepare",
        "--namespace", "docker.io/tripleopike", "--tag", "current-tripleo",
        "--push-destination", "192.168.24.1:8787", *README_ENVS,
        "--output-images-file", "overcloud_containers.yaml",
        "--output-env-file", "docker_registry.yaml", "-f", "value",
        cwd=str(tmp_path), check=True)
    for name in ("docker.yaml", "docker-ha.yaml"):
        assert ("-e environments/%s: not in %s; using the installed %s"
                % (name, tmp_path, data.path("environments", name))) in prep.stderr
    env = yaml.safe_load((tmp_path / "docker_registry.yaml").read_text())
    params = env["parameter_defaults"]
    # docker-ha.yaml was read: the pacemaker bundle images are kept
    assert params["DockerHAProxyImage"].startswith("192.168.24.1:8787/tripleopike/")
    assert params["DockerInsecureRegistryAddress"] == ["192.168.24.1:8787"]

    val = openstack("overcloud", "container", "environment", "validate",
                    *README_ENVS, "-e", "docker_registry.yaml",
                    cwd=str(tmp_path), check=True)
    assert "using the installed %s" % data.path("environments", "docker.yaml") \
        in val.stderr
    assert "no errors" in val.stderr

    # the README's $ENVS for `openstack overcloud deploy`
    envs = subprocess.run(
        [sys.executable, "-c", "from tripleo_containers import data; "
                               "print(data.path('environments'))"],
        cwd=str(tmp_path), capture_output=True, text=True, check=True).stdout.strip()
    assert os.path.isfile(os.path.join(envs, "docker-ha.yaml"))


def test_a_file_in_the_current_directory_wins(tmp_path):
    (tmp_path / "environments").mkdir()
    mine = tmp_path / "environments" / "docker.yaml"
    mine.write_text("resource_registry: {}\n")
    proc = openstack("overcloud", "container", "image", "prepare",
                     "--namespace", "docker.io/tripleopike", "-e", "environments/docker.yaml",
                     "-e", "environments/docker-ha.yaml", "-f", "value",
                     cwd=str(tmp_path), check=True)
    assert "-e environments/docker.yaml:" not in proc.stderr
    assert "-e environments/docker-ha.yaml: not in" in proc.stderr


def test_a_missing_file_is_still_reported(tmp_path):
    proc = openstack("overcloud", "container", "image", "prepare",
                     "-e", "environments/nosuch.yaml", cwd=str(tmp_path))
    assert proc.returncode != 0
    assert "environments/nosuch.yaml" in proc.stderr and "installed" not in proc.stderr
