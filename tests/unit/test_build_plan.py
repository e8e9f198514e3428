"""Images file -> kolla runs: naming, grouping, regexes, kolla discovery."""
import os
import re

import pytest

from tripleo_containers import exceptions
from tripleo_containers.build import kolla

KNOWN = {"base", "openstack-base", "keystone", "keystone-base", "keystone-fernet",
         "nova-api", "nova-base", "api", "haproxy", "mariadb-server", "placement-api"}


def plan(names, **kw):
    return kolla.make_plan(names, kw.pop("known", KNOWN), **kw)


def test_prefix_is_found_from_kolla_names_and_tag_namespace_registry_split():
    p = plan(["docker.io/tripleopike/centos-binary-nova-api:current-tripleo",
              "docker.io/tripleopike/centos-binary-keystone:current-tripleo"])
    [g] = p.groups
    assert (g.registry, g.namespace, g.tag, g.prefix) == (
        None, "tripleopike", "current-tripleo", "centos-binary-")
    # longest kolla name wins: nova-api, not api
    assert [i.kolla_name for i in g.images] == ["nova-api", "keystone"]
    assert g.kolla_args() == ["--namespace", "tripleopike", "--tag", "current-tripleo",
                              "--image-name-prefix", "centos-binary-"]
    assert g.target("nova-api") == "tripleopike/centos-binary-nova-api:current-tripleo"


def test_regexes_are_anchored_so_kolla_does_not_build_lookalikes():
    [g] = plan(["r.example:5000/ns/keystone:t"]).groups
    assert g.regexes() == ["^keystone$"]
    kolla_filter = re.compile("|".join(g.regexes()).join("()"))  # as kolla joins them
    assert [n for n in sorted(KNOWN) if kolla_filter.search(n)] == ["keystone"]


def test_images_differing_in_registry_namespace_tag_or_prefix_get_separate_runs():
    p = plan(["127.0.0.1:8787/a/centos-binary-keystone:1",
              "127.0.0.1:8787/a/centos-binary-haproxy:1",
              "127.0.0.1:8787/a/centos-binary-haproxy:2",
              "127.0.0.1:8787/b/keystone:1",
              "quay.io/a/centos-binary-keystone:1"])
    keys = [(g.registry, g.namespace, g.tag, g.prefix, [i.kolla_name for i in g.images])
            for g in p.groups]
    assert keys == [
        ("127.0.0.1:8787", "a", "1", "centos-binary-", ["keystone", "haproxy"]),
        ("127.0.0.1:8787", "a", "2", "centos-binary-", ["haproxy"]),
        ("127.0.0.1:8787", "b", "1", "", ["keystone"]),
        ("quay.io", "a", "1", "centos-binary-", ["keystone"]),
    ]
    assert p.groups[0].kolla_args()[-2:] == ["--registry", "127.0.0.1:8787"]


def test_registry_option_replaces_every_registry():
    [g] = plan(["docker.io/ns/keystone:t"], registry="192.168.24.1:8787").groups
    assert g.target("keystone") == "192.168.24.1:8787/ns/keystone:t"


def test_skipped_entries_say_why_and_renamed_images_get_a_hint():
    p = plan(["docker.io/ceph/daemon:v3",
              "docker.io/tripleopike/centos-binary-mariadb:t",
              "127.0.0.1:8787/ns/keystone@sha256:" + "a" * 64,
              "127.0.0.1:8787/keystone:t",
              "docker.io/tripleopike/centos-binary-keystone:t"])
    reasons = dict(p.skipped)
    assert "kolla has no image named like 'daemon'" in reasons["docker.io/ceph/daemon:v3"]
    assert "mariadb-server" in reasons["docker.io/tripleopike/centos-binary-mariadb:t"]
    assert "digest" in reasons["127.0.0.1:8787/ns/keystone@sha256:" + "a" * 64]
    assert "namespace" in reasons["127.0.0.1:8787/keystone:t"]
    assert [i.kolla_name for i in p.images] == ["keystone"]


def test_explicit_prefix_suffix_and_exclude():
    names = ["docker.io/ns/centos-binary-keystone-x:t",
             "docker.io/ns/centos-binary-haproxy-x:t",
             "docker.io/ns/centos-binary-nova-api-x:t",
             "docker.io/ns/other-keystone-x:t"]
    p = plan(names, prefix="centos-binary-", suffix="-x", exclude=["haproxy"])
    assert [i.kolla_name for i in p.images] == ["keystone", "nova-api"]
    reasons = dict(p.skipped)
    assert reasons["docker.io/ns/centos-binary-haproxy-x:t"] == "excluded"
    assert "prefix 'centos-binary-'" in reasons["docker.io/ns/other-keystone-x:t"]
    assert plan(["docker.io/ns/centos-binary-keystone:t"], suffix="-x").skipped


def test_exclude_matches_kolla_name_repository_or_full_imagename():
    name = "docker.io/ns/centos-binary-keystone:t"
    for ex in ("keystone", "centos-binary-keystone", "ns/centos-binary-keystone", name):
        assert plan([name], exclude=[ex]).skipped == [(name, "excluded")], ex


def test_without_kolla_names_the_common_dash_prefix_is_used():
    p = plan(["docker.io/ns/centos-binary-keystone:t", "docker.io/ns/centos-binary-nova-api:t"],
             known=None)
    assert p.groups[0].prefix == "centos-binary-"
    assert [i.kolla_name for i in p.images] == ["keystone", "nova-api"]
    assert plan(["docker.io/ns/nova-api:t"], known=None).groups[0].prefix == ""


def test_bad_reference_is_an_input_error_naming_it():
    with pytest.raises(exceptions.InputError, match="Bad/Name"):
        plan(["docker.io/Bad/Name:t"])


def test_kolla_dependency_tree_becomes_parent_rows():
    tree = {"base": ["cron", {"openstack-base": [{"keystone-base": ["keystone"]}]}]}
    assert kolla._edges(tree) == [("base", None), ("cron", "base"),
                                  ("openstack-base", "base"),
                                  ("keystone-base", "openstack-base"),
                                  ("keystone", "keystone-base")]


def test_kolla_missing_is_one_line_with_the_install_hint(monkeypatch):
    import importlib.util
    import shutil
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(kolla.KollaMissing) as e:
        kolla.find_kolla()
    assert str(e.value) == ("kolla is not installed: pip install 'tripleo-containers[build]' "
                            "(or pass --kolla-build PATH)")


def test_kolla_build_path_must_be_executable(tmp_path):
    with pytest.raises(kolla.KollaMissing, match="--kolla-build .*: not an executable"):
        kolla.find_kolla(str(tmp_path / "nope"))


def test_python_console_script_runs_through_the_fast_runner(tmp_path):
    script = tmp_path / "kolla-build"
    script.write_text("#!/opt/venv/bin/python3.11\nimport sys\n")
    os.chmod(str(script), 0o755)
    k = kolla.find_kolla(str(script))
    assert k.argv(["--list-images"]) == ["/opt/venv/bin/python3.11", kolla.RUNNER,
                                         "--list-images"]
    shell = tmp_path / "wrapper"
    shell.write_text("#!/bin/sh\nexec kolla-build \"$@\"\n")
    os.chmod(str(shell), 0o755)
    assert kolla.find_kolla(str(shell)).argv(["x"]) == [str(shell), "x"]
    assert kolla.find_kolla(str(shell)).image_names() is None


def test_failure_names_the_command_and_keeps_the_last_lines(tmp_path):
    script = tmp_path / "kolla-build"
    script.write_text("#!/bin/sh\nfor i in $(seq 1 30); do echo line$i >&2; done\nexit 3\n")
    os.chmod(str(script), 0o755)
    seen = []
    with pytest.raises(kolla.KollaFailed) as e:
        kolla.run_kolla(kolla.Kolla(executable=str(script)), ["--tag", "a b"], seen.append)
    text = str(e.value)
    first, *rest = text.splitlines()
    assert first == "kolla-build failed (exit 3): %s --tag 'a b'" % script
    assert rest[1:] == ["  line%d" % i for i in range(11, 31)]
    assert len(seen) == 30


def test_request_refuses_unknown_base_and_missing_kolla_config(tmp_path):
    with pytest.raises(exceptions.InputError, match="--base centos: kolla builds on debian, rocky, ubuntu"):
        kolla.Request(["x"], base="centos")
    with pytest.raises(exceptions.InputError, match="--kolla-config-file .*nope: no such file"):
        kolla.Request(["x"], kolla_config_files=[str(tmp_path / "nope")])
