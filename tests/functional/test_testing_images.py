"""The Kolla-like image generator (tripleo_containers.testing.images),
cross-checked with skopeo against real registries."""
import gzip
import hashlib
import io
import json
import tarfile
import zlib

import pytest

from tripleo_containers.testing import images


def test_layer_is_a_deterministic_incompressible_tar_gz():
    a = images.make_layer("nova-base", 200000, seed=1)
    assert a == images.make_layer("nova-base", 200000, seed=1)
    assert a.digest != images.make_layer("nova-base", 200000, seed=2).digest
    assert a.digest != images.make_layer("nova-api", 200000, seed=1).digest
    assert a.digest == "sha256:" + hashlib.sha256(a.data).hexdigest()
    raw = gzip.decompress(a.data)
    assert a.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    names = tarfile.open(fileobj=io.BytesIO(raw)).getnames()
    assert names == ["usr/share/kolla/nova-base.txt", "var/lib/kolla/nova-base.bin"]
    assert 190000 <= a.size <= 200000
    assert len(zlib.compress(raw, 6)) > 0.95 * len(raw)


def test_kolla_layer_chains_share_bases():
    assert [k for k, _ in images.layer_chain("nova-api")] == [
        "base", "openstack-base", "nova-base", "nova-api"]
    assert [k for k, _ in images.layer_chain("keystone")] == [
        "base", "openstack-base", "keystone"]
    assert [k for k, _ in images.layer_chain("mariadb")] == ["base", "mariadb"]
    assert len(images.DEFAULT_IMAGES) == 60


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_seeded_images_match_skopeo(plain_registry, skopeo, request_counter, fmt):
    counter = request_counter(plain_registry)
    names = ["nova-api", "nova-compute", "keystone", "mariadb"]
    seeded = images.seed_kolla_set(plain_registry, images=names, fmt=fmt,
                                   image_labels={"keystone": {"release": "42"}},
                                   extra_tags=["17.0.0-1"])
    manifest_type, _, config_type, layer_type = images.MEDIA_TYPES[fmt]
    for name in names:
        img = seeded.images[name]
        assert img.reference == "%s/tripleo/centos-binary-%s:latest" % (
            plain_registry.address, name)
        info = skopeo.inspect(plain_registry, "tripleo/centos-binary-%s:latest" % name)
        assert info["Digest"] == img.digest
        assert info["Layers"] == img.layers
        assert info["Labels"]["version"] == "17.0.0"
        raw = skopeo.inspect(plain_registry, "%s:17.0.0-1" % img.repository, raw=True)
        assert raw == img.manifest
        doc = json.loads(raw)
        assert doc["mediaType"] == manifest_type
        assert doc["config"]["mediaType"] == config_type
        assert {layer["mediaType"] for layer in doc["layers"]} == {layer_type}
    assert skopeo.inspect(plain_registry, "tripleo/centos-binary-keystone:latest",
                          config=True)["config"]["Labels"]["release"] == "42"
    # nova-api and nova-compute share base, openstack-base and nova-base.
    assert seeded.images["nova-api"].layers[:3] == seeded.images["nova-compute"].layers[:3]
    assert seeded.images["mariadb"].layers[0] == seeded.images["keystone"].layers[0]
    # 6 unique layers (base, openstack-base, nova-base, 3 services + mariadb) + 4 configs.
    assert len(seeded.layer_digests) == 7 and len(seeded.blobs) == 11
    assert seeded.unique_bytes == sum(seeded.blobs.values())
    # Every unique blob was uploaded exactly once; everything else was mounted.
    assert counter.count(method="PUT", route="upload", status=201) == len(seeded.blobs)
    mounts = counter.count(method="POST", route="upload", query="mount=", status=201)
    assert mounts == sum(len(i.layers) for i in seeded.images.values()) - 7
    assert counter.count(method="PUT", route="manifest", status=201) == 2 * len(names)


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_multiarch_image_is_a_two_platform_list(plain_registry, registry_factory, skopeo, fmt):
    seeded = images.seed_kolla_set(plain_registry, images=["keystone", "cron"],
                                   multiarch=["keystone"], fmt=fmt)
    img = seeded.images["keystone"]
    assert img.media_type == images.MEDIA_TYPES[fmt][1]
    raw = skopeo.inspect(plain_registry, "%s:latest" % img.repository, raw=True)
    assert raw == img.manifest
    doc = json.loads(raw)
    assert [m["platform"]["architecture"] for m in doc["manifests"]] == ["amd64", "arm64"]
    for arch, child in img.children.items():
        info = skopeo.inspect(plain_registry, "%s:latest" % img.repository,
                              extra=["--override-arch", arch])
        assert info["Digest"] == img.digest  # skopeo reports the list's digest
        assert info["Architecture"] == arch
        child_raw = skopeo.inspect(plain_registry, "%s@%s" % (img.repository, child.digest),
                                   raw=True)
        assert child_raw == seeded.manifests[child.digest] == child.manifest
        assert info["Layers"] == child.layers
    assert set(img.children["amd64"].layers).isdisjoint(img.children["arm64"].layers)
    assert img.layers == img.children["amd64"].layers
    assert seeded.images["cron"].children == {}
    # skopeo copies the whole list to another registry with the same digest.
    other = registry_factory()
    skopeo.copy(plain_registry, "%s:latest" % img.repository, other, "copy/keystone:1",
                all_images=True, extra=["--preserve-digests"])
    assert skopeo.inspect(other, "copy/keystone:1", raw=True) == img.manifest


def test_seed_into_tls_auth_registry(tls_auth_registry, skopeo):
    seeded = images.seed_kolla_set(tls_auth_registry, namespace="kolla", prefix="",
                                   tag="zed", images=["glance-api"])
    img = seeded.images["glance-api"]
    assert img.reference == "%s/kolla/glance-api:zed" % tls_auth_registry.address
    assert skopeo.inspect(tls_auth_registry, "kolla/glance-api:zed")["Digest"] == img.digest
    bad = skopeo.run("inspect", "--cert-dir", tls_auth_registry.cert_dir, "--creds",
                     "%s:wrong" % tls_auth_registry.username,
                     skopeo.ref(tls_auth_registry, "kolla/glance-api:zed"))
    assert bad.returncode != 0 and b"unauthorized" in bad.stderr.lower()
    with pytest.raises(RuntimeError, match="401"):
        images.seed_kolla_set(tls_auth_registry.url, images=["cron"],
                              auth=(tls_auth_registry.username, "wrong"),
                              verify=tls_auth_registry.ca_cert)


def test_same_inputs_same_digests_across_registries(registry_factory):
    a = images.seed_kolla_set(registry_factory(), images=["heat-api"], seed=7)
    b = images.seed_kolla_set(registry_factory(), images=["heat-api"], seed=7)
    c = images.seed_kolla_set(registry_factory(), images=["heat-api"], seed=8)
    assert a.images["heat-api"].digest == b.images["heat-api"].digest
    assert a.images["heat-api"].digest != c.images["heat-api"].digest
