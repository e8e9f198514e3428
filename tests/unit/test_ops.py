"""registry.ops pieces that need exact inputs: label formats,
tag-list pagination (distribution 2.8 ignores n on tags/list), batches."""
import json

import pytest

from fake_registry import FakeRegistry, digest_of
from tripleo_containers import exceptions
from tripleo_containers.registry import client as client_mod
from tripleo_containers.registry import errors, ops, reference, transport

LABELS = {"version": "17.0.0", "release": "3", "org.opencontainers.image.version": "17.0",
          "build-date": "20260101", "summary": "a b"}


@pytest.mark.parametrize("fmt,tag", [
    ("version", "17.0.0"),
    ("{version}-{release}", "17.0.0-3"),
    ("{org.opencontainers.image.version}", "17.0"),
    ("v{version}_{build-date}", "v17.0.0_20260101"),
])
def test_tag_from_labels(fmt, tag):
    assert ops.tag_from_labels(LABELS, fmt, "r") == tag


@pytest.mark.parametrize("fmt,message", [
    ("colour", "no label 'colour' (tag from label 'colour'); its labels: build-date, "
               "org.opencontainers.image.version, release, summary, version"),
    ("{version}-{rel}", "no label 'rel'"),
    ("{summary}", "'a b'"),
    ("{version}!", "not a valid tag"),
])
def test_tag_from_labels_errors(fmt, message):
    with pytest.raises(ops.LabelError) as exc:
        ops.tag_from_labels(LABELS, fmt, "reg/ns/img:latest")
    assert message in str(exc.value)
    assert "reg/ns/img:latest" in str(exc.value)
    assert isinstance(exc.value, exceptions.InputError)


def client_for(reg):
    return client_mod.Client(transport.Transport(insecure=[reg.address], retries=0))


def add_labelled(reg, repo, tags, labels):
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Labels": labels}}).encode()
    doc = {"schemaVersion": 2, "mediaType": client_mod.DOCKER_MANIFEST,
           "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                      "size": len(config), "digest": reg.add_blob(repo, config)},
           "layers": []}
    data = json.dumps(doc).encode()
    for tag in tags:
        reg.add_manifest(repo, tag, data, client_mod.DOCKER_MANIFEST)
    return digest_of(data)


def test_list_follows_link_for_catalog_and_tags(fake):
    tags = ["t%d" % i for i in range(7)]
    for r in ("ns/a", "ns/b", "ns/c"):
        fake.add_image(r, None, [b"layer"])
        for t in tags:
            fake.add_image(r, t, [b"layer"])
    rows = ops.list_images(client_for(fake), fake.address, page_size=3)
    assert rows == [(r, t, None) for r in ("ns/a", "ns/b", "ns/c") for t in tags]
    assert len(fake.requests("GET", "_catalog")) == 1  # 3 repos fit in one page
    # 7 tags in pages of 3: 3 requests per repository, with n and last
    tag_reqs = fake.requests("GET", "/ns/b/tags/list")
    assert [(r.query.get("n"), r.query.get("last")) for r in tag_reqs] == [
        ("3", None), ("3", "t2"), ("3", "t5")]


def test_discover_tag_reads_manifest_and_config_only(fake):
    digest = add_labelled(fake, "ns/img", ["latest", "17.0.0-3"], LABELS)
    ref = reference.parse("%s/ns/img:latest" % fake.address)
    found = ops.discover_tag(client_for(fake), ref, "{version}-{release}")
    assert (found.tag, found.digest) == ("17.0.0-3", digest)
    assert str(found.tagged) == "%s/ns/img:17.0.0-3" % fake.address
    assert not fake.requests(contains="tags/list")
    assert [s for s in fake.sequence() if s != "GET /v2/"] == [
        "GET /v2/ns/img/manifests/latest",
        "GET /v2/ns/img/blobs/%s" % json.loads(
            fake.manifests["ns/img"]["latest"][0])["config"]["digest"],
        "HEAD /v2/ns/img/manifests/17.0.0-3"]


def test_discover_tags_batch_tries_all_then_fails(fake):
    ok = reference.parse("%s/ns/ok:latest" % fake.address)
    add_labelled(fake, "ns/ok", ["latest", "17.0.0"], LABELS)
    add_labelled(fake, "ns/nolabel", ["latest"], {"release": "1"})
    refs = {ok: "version",
            reference.parse("%s/ns/nolabel:latest" % fake.address): "version",
            reference.parse("%s/ns/missing:latest" % fake.address): "version"}
    with pytest.raises(exceptions.Error) as exc:
        ops.discover_tags(client_for(fake), refs)
    text = str(exc.value)
    assert text.startswith("2 of 3 tag discoveries failed: ")
    assert "ns/missing:latest not found" in text and "no label 'version'" in text
    assert fake.requests("HEAD", "/ns/ok/manifests/17.0.0")  # the good one still ran


def test_pick_child_names_the_platforms():
    data = json.dumps({"schemaVersion": 2, "mediaType": client_mod.DOCKER_LIST,
                       "manifests": [{"digest": "sha256:" + "a" * 64, "platform": {
                           "os": "linux", "architecture": "arm64", "variant": "v8"}}]})
    manifest = client_mod.Manifest(data.encode(), client_mod.DOCKER_LIST, "x")
    assert ops.pick_child(manifest, "r", "linux/arm64")["digest"].endswith("a")
    with pytest.raises(errors.NotFound) as exc:
        ops.pick_child(manifest, "r", "linux/amd64")
    assert "has no linux/amd64 variant (it has: linux/arm64/v8)" in str(exc.value)


def test_delete_refused_and_by_digest(fake):
    digest = add_labelled(fake, "ns/img", ["latest"], LABELS)
    ref = reference.parse("%s/ns/img:latest" % fake.address)
    with pytest.raises(client_mod.DeleteRefused) as exc:
        ops.delete(client_for(fake), ref)
    assert "storage.delete.enabled: true" in str(exc.value)
    assert fake.sequence()[-1] == "DELETE /v2/ns/img/manifests/%s" % digest


def test_prepare_labels_and_pins_with_container_scheme(fake):
    """core.prepare with a shared client: discovered tags in both outputs,
    digests pinned, pacemaker-cut parameters left on their tag."""
    from tripleo_containers.prepare import core
    digests = {}
    for name in ("keystone", "mariadb"):
        repo = "ns/centos-binary-" + name
        digests[name] = add_labelled(fake, repo, ["latest", "17.0.0-3"], LABELS)
    request = core.Request(
        values={"namespace": fake.address + "/ns", "tag": "latest"},
        includes=["keystone|mariadb"], push_destination="10.0.0.1:8787",
        scheme="container", tag_from_label="{version}-{release}", pin_digests="source",
        client=client_for(fake))
    result = core.prepare(request)
    assert sorted(i.imagename for i in result.images) == [
        "%s/ns/centos-binary-%s:17.0.0-3" % (fake.address, n) for n in ("keystone", "mariadb")]
    assert result.params["ContainerKeystoneImage"] == \
        "10.0.0.1:8787/ns/centos-binary-keystone@" + digests["keystone"]
    assert result.params["ContainerMysqlConfigImage"] == \
        "10.0.0.1:8787/ns/centos-binary-mariadb@" + digests["mariadb"]
    assert result.params["ContainerMysqlImage"] == \
        "10.0.0.1:8787/ns/centos-binary-mariadb:17.0.0-3"
    assert result.unpinned == ["ContainerMysqlImage"]
    # the discovery HEAD gave the pin: no extra manifest request per image
    assert len(fake.requests("HEAD")) == 2


@pytest.mark.parametrize("value", [["version"], "", 3])
def test_prepare_rejects_bad_tag_from_label(tmp_path, value):
    import yaml
    from tripleo_containers.prepare import core
    path = tmp_path / "cip.yaml"
    path.write_text(yaml.safe_dump({"parameter_defaults": {"ContainerImagePrepare": [
        {"tag_from_label": value}]}}))
    with pytest.raises(exceptions.InputError) as exc:
        core.prepare(core.Request(env_files=[str(path)]))
    assert "tag_from_label must be a label name" in str(exc.value)


def test_unreachable_registry_costs_one_round_of_retries():
    from tripleo_containers.registry import local
    address = "127.0.0.1:%d" % local.free_port()
    sleeps = []
    client = client_mod.Client(transport.Transport(
        insecure=[address], retries=2, sleep=sleeps.append))
    refs = dict((reference.parse("%s/ns/img%d:latest" % (address, i)), "version")
                for i in range(6))
    with pytest.raises(exceptions.Error) as exc:
        ops.discover_tags(client, refs)
    assert str(exc.value) == (
        "6 of 6 tag discoveries failed: GET http://%s/v2/: cannot reach %s: "
        "Connection refused (6 times)" % (address, address))
    assert len(sleeps) == 2  # one ping with its retries, not one per image


def test_batches_on_a_token_registry_ask_for_one_token():
    """Tag discovery and listing over N repositories of a Bearer registry:
    one token request for the batch, not one per repository."""
    from tripleo_containers.registry import credentials
    reg = FakeRegistry(auth="bearer")
    try:
        names = ["ns/img%d" % i for i in range(6)]
        for name in names:
            add_labelled(reg, name, ["latest", "17.0.0"], LABELS)
        keychain = credentials.Keychain(explicit={reg.address: (reg.username, reg.password)},
                                        explicit_source="creds.yaml", files=[])
        client = client_mod.Client(transport.Transport(
            keychain=keychain, insecure=[reg.address], retries=0))
        refs = dict((reference.parse("%s/%s:latest" % (reg.address, n)), "version")
                    for n in names)
        found = ops.discover_tags(client, refs)
        assert {d.tag for d in found.values()} == {"17.0.0"}
        tokens = reg.requests("GET", "/token")
        assert len(tokens) == 1
        assert sorted(tokens[0].query_all["scope"]) == [
            "repository:%s:pull" % n for n in names]
        rows = ops.list_images(client, reg.address, page_size=4)
        assert sorted(set(r for r, _, _ in rows)) == names
        # + the catalog token; the tag listings reuse the discovery token
        assert len(reg.requests("GET", "/token")) == 2

        # a fresh run with at most 4 repositories per token: 6 need 2 tokens
        fresh = client_mod.Client(transport.Transport(
            keychain=keychain, insecure=[reg.address], retries=0))
        ops.prefetch_tokens(fresh, list(refs), per_token=4)
        assert [len(t.query_all["scope"]) for t in reg.requests("GET", "/token")[2:]] == [4, 2]
        for ref in refs:
            ops.resolve_digest(fresh, ref)
        assert len(reg.requests("GET", "/token")) == 4
    finally:
        reg.close()
