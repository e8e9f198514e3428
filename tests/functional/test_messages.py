"""Help and messages as the user reads them, through the real CLIs: prepare's
defaults in --help, commands to run next named with the program actually
run, file/line/column for a malformed environment, the file a bad
ContainerImagePrepare came from, and `registry stop` returning only once the
registry's PID is gone."""
import os
import shlex

import pytest

from osc_cli import BIN, openstack, standalone
from tripleo_containers.prepare import catalog
from tripleo_containers.registry import local
from tripleo_containers.testing import images

CLIS = {"openstack": (openstack, ("overcloud", "container")),
        "tripleo-containers": (standalone, ())}


def _one_line(proc):
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_prepare_help_shows_the_catalog_defaults():
    text = " ".join(openstack("overcloud", "container", "image", "prepare", "--help",
                              check=True).stdout.split())
    for option, key in (("--namespace <registry/namespace>", "namespace"),
                        ("--tag <tag>", "tag"), ("--prefix <prefix>", "name_prefix")):
        # the option's own help: from its name up to the next option
        own = text.split(option + " ")[-1].split(" --")[0]
        assert "(default: " in own, own
        for release in catalog.RELEASES:
            assert str(catalog.defaults(release)[key]) in own, (release, own)


@pytest.mark.parametrize("program", sorted(CLIS))
def test_registry_start_names_its_stop_command_and_stop_waits_for_the_pid(
        program, tmp_path):
    cli, prefix = CLIS[program]
    state = tmp_path / "state"
    started = cli(*prefix, "registry", "start", "--address", "127.0.0.1:%d" % local.free_port(),
                  "--state-dir", str(state), "-f", "value", "-c", "pid", "-c", "stop_with",
                  check=True)
    pid_text, stop_with = started.stdout.splitlines()
    pid = int(pid_text)
    try:
        argv = shlex.split(stop_with)
        assert argv[0] == program and argv[-2:] == ["--state-dir", str(state)], stop_with
        stopped = cli(*argv[1:], "-f", "value", "-c", "stopped", check=True)
        assert stopped.stdout.strip() == "True"
        # gone, not a zombie waiting for init to reap it
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    finally:
        cli(*prefix, "registry", "stop", "--state-dir", str(state))


@pytest.mark.parametrize("program", sorted(CLIS))
def test_delete_refused_names_registry_start_delete_enabled(program, plain_registry):
    cli, prefix = CLIS[program]
    seeded = images.seed_kolla_set(plain_registry, "tripleo", "centos-binary-", "latest",
                                   images=["keystone"], sizes="tiny")
    ref = seeded.images["keystone"].reference
    line = _one_line(cli(*prefix, "image", "delete", ref, "--yes",
                         "--insecure-registry", plain_registry.address))
    start = " ".join((program,) + prefix + ("registry", "start"))
    assert "`%s --delete-enabled`" % start in line, line
    assert line.startswith("DELETE http://%s/v2/" % plain_registry.address), line
    assert "storage.delete.enabled: true" in line
    # the option it names exists
    assert "--delete-enabled" in cli(*prefix, "registry", "start", "--help",
                                     check=True).stdout


def test_malformed_environment_says_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameter_defaults:\n  DockerNamespace: [a, b}\n")
    for args in (("image", "prepare"), ("environment", "validate")):
        proc = openstack("overcloud", "container", *args, "-e", str(bad))
        text = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert str(bad) in text and "line 2, column 25" in text, text
    line = _one_line(openstack("overcloud", "container", "image", "prepare", "-e", str(bad)))
    assert line.startswith("environment file %s: line 2, column 25: " % bad), line


@pytest.mark.parametrize("content, message", [
    ("  ContainerImagePrepare: 5\n", "ContainerImagePrepare must be a list of mappings"),
    ("  ContainerImagePrepare:\n  - set: 3\n", "ContainerImagePrepare entry 1: set must"),
    ("  ContainerImagePrepare:\n  - push_destination: 'a b'\n",
     "ContainerImagePrepare entry 1 push_destination 'a b' is not a registry address"),
])
def test_bad_container_image_prepare_names_its_file(tmp_path, content, message):
    first = tmp_path / "first.yaml"
    first.write_text("parameter_defaults:\n  ContainerImagePrepare:\n  - set: {tag: t}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("parameter_defaults:\n" + content)
    line = _one_line(openstack("overcloud", "container", "image", "prepare",
                               "-e", str(first), "-e", str(bad), "-f", "value"))
    assert line.startswith("environment file %s: %s" % (bad, message)), line


def test_env_file_header_names_the_program_run(tmp_path):
    out = tmp_path / "env.yaml"
    standalone("image", "prepare", "--output-env-file", str(out), "-f", "value",
               check=True)
    assert "# Command: tripleo-containers image prepare --output-env-file" in \
        out.read_text()
    assert os.path.exists(os.path.join(BIN, "tripleo-containers"))
