"""image list / show / delete through the real `openstack` CLI against real
registries (plain HTTP, and TLS + htpasswd auth)."""
import json

import pytest
import yaml

from osc_cli import openstack
from tripleo_containers.testing import images


def registry_args(reg, tmp_path):
    """CLI connection options for a test registry."""
    if reg.insecure:
        return ["--insecure-registry", reg.address]
    args = ["--ca-bundle", "%s=%s" % (reg.address, reg.ca_cert)]
    if reg.username:
        creds = tmp_path / "creds.yaml"
        creds.write_text(yaml.safe_dump({reg.address: {reg.username: reg.password}}))
        args += ["--registry-credentials", str(creds)]
    return args


def image_cmd(*args, **kw):
    return openstack("overcloud", "container", "image", *args, **kw)


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("kind", ["plain", "tls_auth"])
def test_list_paginates_catalog_and_shows_digests(kind, registry_factory, request_counter,
                                                  tmp_path):
    reg = registry_factory(tls=kind == "tls_auth", auth=kind == "tls_auth")
    names = ["keystone", "glance-api", "nova-api", "mariadb", "cron"]
    seeded = images.seed_kolla_set(reg, "tripleo", "centos-binary-", "latest",
                                   images=names, extra_tags=["17.0.0-1"])
    counter = request_counter(reg)
    proc = image_cmd("list", "--registry", reg.address, "--page-size", "2", "--digests",
                     "-f", "json", *registry_args(reg, tmp_path), check=True)
    rows = json.loads(proc.stdout)
    want = sorted((img.repository, t, img.digest)
                  for img in seeded.images.values() for t in ("latest", "17.0.0-1"))
    assert sorted((r["Repository"], r["Tag"], r["Digest"]) for r in rows) == want
    # 5 repositories in pages of 2: three _catalog requests, following Link
    assert counter.count(route="catalog", status=200) == 3
    assert counter.count(route="tags", status=200) == len(names)
    assert counter.count(method="HEAD", route="manifest", status=200) == 2 * len(names)
    assert counter.count(method="GET", route="manifest") == 0


def test_show_multiarch_json_and_yaml(plain_registry, skopeo, request_counter, tmp_path):
    reg = plain_registry
    seeded = images.seed_kolla_set(reg, "tripleo", "centos-binary-", "latest",
                                   images=["nova-api"], multiarch=["nova-api"],
                                   labels={"org.opencontainers.image.version": "17.0.0"})
    img = seeded.images["nova-api"]
    counter = request_counter(reg)
    proc = image_cmd("show", img.reference, "-f", "json", *registry_args(reg, tmp_path),
                     check=True)
    info = json.loads(proc.stdout)
    # list, amd64 child, config: one request each (plus the ping)
    assert counter.count(method="GET", route="manifest", status=200) == 2
    assert counter.count(method="GET", route="blob", status=200) == 1
    assert counter.count() == 4
    config = skopeo.inspect(reg, img.repository + ":latest", config=True)
    amd = img.children["amd64"]
    assert info["Digest"] == img.digest
    assert info["Media type"] == images.DOCKER_LIST
    assert info["Platforms"] == ["linux/amd64", "linux/arm64"]
    assert info["Platform digest"] == amd.digest
    assert info["Created"] == config["created"]
    assert info["Labels"] == config["config"]["Labels"]
    assert info["Labels"]["org.opencontainers.image.version"] == "17.0.0"
    manifest = json.loads(amd.manifest)
    assert [l["digest"] for l in info["Layers"]] == amd.layers
    assert [l["size"] for l in info["Layers"]] == [l["size"] for l in manifest["layers"]]
    assert info["Size"] == manifest["config"]["size"] + sum(
        l["size"] for l in manifest["layers"])

    proc = image_cmd("show", img.reference, "--platform", "linux/arm64", "-f", "yaml",
                     *registry_args(reg, tmp_path), check=True)
    arm = yaml.safe_load(proc.stdout)
    assert arm["Platform digest"] == img.children["arm64"].digest
    assert arm["Layers"][-1]["digest"] == img.children["arm64"].layers[-1]


def test_show_tls_auth_oci_table(tls_auth_registry, tmp_path):
    reg = tls_auth_registry
    seeded = images.seed_kolla_set(reg, "tripleo", "centos-binary-", "17.0.0-1",
                                   images=["keystone"], fmt="oci")
    img = seeded.images["keystone"]
    proc = image_cmd("show", img.reference, *registry_args(reg, tmp_path), check=True)
    assert img.digest in proc.stdout
    assert images.OCI_MANIFEST in proc.stdout
    assert "linux/amd64" in proc.stdout
    assert "version='17.0.0'" in proc.stdout
    assert reg.password not in proc.stdout + proc.stderr


@pytest.mark.parametrize("kind", ["plain", "tls_auth"])
def test_delete_then_show_is_not_found(kind, registry_factory, skopeo, tmp_path):
    tls = kind == "tls_auth"
    reg = registry_factory(delete_enabled=True, tls=tls, auth=tls)
    seeded = images.seed_kolla_set(reg, "tripleo", "centos-binary-", "latest",
                                   images=["keystone", "cron"], extra_tags=["17.0.0-1"])
    img = seeded.images["keystone"]
    args = registry_args(reg, tmp_path)
    proc = image_cmd("delete", img.reference, "--yes", "-f", "json", *args, check=True)
    assert json.loads(proc.stdout)["Digest"] == img.digest
    # every tag of that manifest is gone, the other repository untouched
    for tag in ("latest", "17.0.0-1"):
        gone = skopeo.run("inspect", *skopeo.flags(reg),
                          "docker://%s/%s:%s" % (reg.address, img.repository, tag))
        assert gone.returncode != 0
    assert skopeo.inspect(reg, seeded.images["cron"].repository + ":latest")["Digest"] \
        == seeded.images["cron"].digest
    proc = image_cmd("show", img.reference, *args)
    assert_one_line_error(proc, "not found", img.reference)


def test_delete_refused_says_how_to_enable(plain_registry, skopeo, tmp_path):
    reg = plain_registry
    seeded = images.seed_kolla_set(reg, "tripleo", "centos-binary-", "latest",
                                   images=["keystone"])
    img = seeded.images["keystone"]
    proc = image_cmd("delete", img.reference, "--yes", *registry_args(reg, tmp_path))
    assert_one_line_error(proc, "does not allow deletes", "storage.delete.enabled")
    # without --yes and no terminal nothing is even tried
    proc = image_cmd("delete", img.reference, *registry_args(reg, tmp_path))
    assert_one_line_error(proc, "pass --yes")
    assert skopeo.inspect(reg, img.repository + ":latest")["Digest"] == img.digest


def test_bad_input_one_clear_line(plain_registry, tmp_path):
    reg = plain_registry
    images.seed_kolla_set(reg, "tripleo", "centos-binary-", "latest", images=["cron"])
    args = registry_args(reg, tmp_path)
    cases = [
        (("show", "%s/tripleo/centos-binary-nope:latest" % reg.address) + tuple(args),
         ["centos-binary-nope:latest not found"]),
        (("show", "%s/tripleo/centos-binary-cron:17.0" % reg.address) + tuple(args),
         ["centos-binary-cron:17.0 not found"]),
        (("show", "Tripleo/Cron:latest"), ["invalid image reference", "lowercase"]),
        # plain-HTTP registry not marked insecure: TLS fails, the hint says what to do
        (("show", "%s/tripleo/centos-binary-cron:latest" % reg.address),
         ["--insecure-registry %s" % reg.address]),
        (("list", "--registry", "not a host"), ["--registry", "HOST:PORT"]),
    ]
    for args_, fragments in cases:
        assert_one_line_error(image_cmd(*args_), *fragments)


def test_unreachable_registry_one_line(tmp_path):
    from tripleo_containers.registry import local
    address = "127.0.0.1:%d" % local.free_port()
    proc = image_cmd("list", "--registry", address, "--insecure-registry", address)
    assert_one_line_error(proc, "cannot reach %s" % address, "Connection refused")
