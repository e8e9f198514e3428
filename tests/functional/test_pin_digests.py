"""Digest pinning round trip: prepare --pin-digests, upload, and the pinned
references exist at the push destination with the source digests."""
import hashlib

import yaml

from osc_cli import openstack
from test_ops_cli import assert_one_line_error
from tripleo_containers.testing import images

NAMES = ["keystone", "cron", "mariadb"]


def prepare(src, dst, *args, **kw):
    return openstack("overcloud", "container", "image", "prepare",
                     "--namespace", src.address + "/tripleo", "--tag", "latest",
                     "--include", "|".join(NAMES), "--insecure-registry", src.address,
                     "--push-destination", dst.address, *args, **kw)


def pinned_params(env):
    params = yaml.safe_load(env.read_text())["parameter_defaults"]
    return dict((k, v) for k, v in params.items() if k.endswith("Image"))


def test_pin_source_upload_then_destination(registry_factory, skopeo, tmp_path):
    src, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(src, "tripleo", "centos-binary-", "latest",
                                   images=NAMES, multiarch=["cron"]).images
    env, imgs = tmp_path / "env.yaml", tmp_path / "images.yaml"
    proc = prepare(src, dst, "--pin-digests", "source", "--output-env-file", env,
                   "--output-images-file", imgs, check=True)
    params = pinned_params(env)
    by_repo = dict((img.repository, img.digest) for img in seeded.values())
    for name, value in params.items():
        if name == "DockerMysqlImage":
            # pacemaker bundles cut at the last ':': left on its tag, and said so
            assert value == "%s/tripleo/centos-binary-mariadb:latest" % dst.address
            continue
        repo, digest = value.split("/", 1)[1].split("@")
        assert value.startswith(dst.address + "/")
        assert digest == by_repo[repo], name
    assert "not pinned" in proc.stderr and "DockerMysqlImage" in proc.stderr
    # that one unpinned parameter is the only floating one left
    assert "1 image parameters use floating tags (latest)" in proc.stderr

    openstack("overcloud", "container", "image", "upload", "--config-file", imgs,
              "--insecure-registry", src.address, check=True)
    # every pinned reference resolves at the destination to the source digest
    for value in set(params.values()):
        if "@" in value:
            repo = value.split("/", 1)[1].split("@")[0]
            raw = skopeo.inspect(dst.address, value.split("/", 1)[1], raw=True)
            assert hashlib.sha256(raw).hexdigest() == by_repo[repo][7:]
    env2 = tmp_path / "env2.yaml"
    prepare(src, dst, "--pin-digests", "destination", "--output-env-file", env2,
            check=True)
    assert pinned_params(env2) == params


def test_pin_destination_before_upload_fails_clearly(registry_factory, tmp_path):
    src, dst = registry_factory(), registry_factory()
    images.seed_kolla_set(src, "tripleo", "centos-binary-", "latest", images=NAMES)
    env = tmp_path / "env.yaml"
    proc = prepare(src, dst, "--pin-digests", "destination", "--output-env-file", env)
    assert_one_line_error(proc, "3 of 3 digest lookups at the push destination",
                          "upload the images before pinning there", "not found")
    assert not env.exists()


def test_unpinned_floating_tag_warns(plain_registry, tmp_path):
    env = tmp_path / "env.yaml"
    proc = openstack("overcloud", "container", "image", "prepare", "--tag", "latest",
                     "--include", "keystone", "--output-env-file", env, check=True)
    assert "2 image parameters use floating tags (latest)" in proc.stderr
    proc = openstack("overcloud", "container", "image", "prepare", "--tag", "17.0.0-1",
                     "--include", "keystone", "--output-env-file", env, check=True)
    assert "floating" not in proc.stderr
