"""Tag discovery from config labels: the `tag discover` command and prepare's
--tag-from-label / tag_from_label, through the real CLI and real registries."""
import yaml

from osc_cli import openstack
from test_ops_cli import assert_one_line_error, image_cmd, registry_args
from tripleo_containers.testing import images

LABELS = {"keystone": {"version": "17.1.0", "release": "3"},
          "cron": {"version": "17.0.2", "release": "7"}}


def seed(reg, **kw):
    """keystone, cron (multi-arch) and mariadb at :latest, each also pushed
    under the {version}-{release} tag of its labels."""
    out = {}
    for name in ("keystone", "cron", "mariadb"):
        labels = LABELS.get(name, {"version": "10.3.0", "release": "1"})
        out[name] = images.seed_kolla_set(
            reg, "tripleo", "centos-binary-", "latest", images=[name],
            multiarch=[name] if name == "cron" else (),
            image_labels={name: labels},
            extra_tags=["%(version)s-%(release)s" % labels], **kw).images[name]
    return out


def test_discover_command_plain_and_tls_auth(registry_factory, request_counter, tmp_path):
    for tls in (False, True):
        reg = registry_factory(tls=tls, auth=tls)
        seeded = seed(reg)
        counter = request_counter(reg)
        proc = image_cmd("tag", "discover", "--image", seeded["cron"].reference,
                         "--tag-from-label", "{version}-{release}",
                         *registry_args(reg, tmp_path), check=True)
        assert proc.stdout == "17.0.2-7\n"
        # manifest list, amd64 child, config blob, HEAD of the tag: no tag list
        assert counter.count(route="tags") == 0
        assert counter.count(method="GET", route="manifest", status=200) == 2
        assert counter.count(method="GET", route="blob", status=200) == 1
        assert counter.count(method="HEAD", route="manifest", status=200) == 1


def test_discover_bad_input(plain_registry, tmp_path):
    reg = plain_registry
    seeded = seed(reg)
    args = registry_args(reg, tmp_path)
    ref = seeded["keystone"].reference
    cases = [
        (("--image", ref, "--tag-from-label", "colour"),
         ["no label 'colour'", "its labels: build-date, kolla_version, name, release"]),
        # the labels give 17.1.0, which was never pushed
        (("--image", ref, "--tag-from-label", "version"),
         ["'17.1.0'", "does not exist"]),
        (("--image", "%s/tripleo/centos-binary-nope:latest" % reg.address,
          "--tag-from-label", "version"), ["centos-binary-nope:latest not found"]),
        (("--image", ref, "--tag-from-label", "{summary}"), ["not a valid tag"]),
    ]
    for extra, fragments in cases:
        assert_one_line_error(image_cmd("tag", "discover", *(extra + tuple(args))),
                              *fragments)


def prepare(*args, **kw):
    return openstack("overcloud", "container", "image", "prepare", *args, **kw)


def test_prepare_tag_from_label_option(plain_registry, tmp_path):
    reg = plain_registry
    seed(reg)
    env, imgs = tmp_path / "env.yaml", tmp_path / "images.yaml"
    prepare("--namespace", reg.address + "/tripleo", "--tag", "latest",
            "--include", "keystone|cron|mariadb", "--insecure-registry", reg.address,
            "--tag-from-label", "{version}-{release}", "--push-destination",
            "192.168.24.1:8787", "--output-env-file", env, "--output-images-file", imgs,
            check=True)
    params = yaml.safe_load(env.read_text())["parameter_defaults"]
    assert params["DockerKeystoneImage"] == \
        "192.168.24.1:8787/tripleo/centos-binary-keystone:17.1.0-3"
    assert params["DockerCrondImage"] == \
        "192.168.24.1:8787/tripleo/centos-binary-cron:17.0.2-7"
    assert params["DockerMysqlImage"] == \
        "192.168.24.1:8787/tripleo/centos-binary-mariadb:10.3.0-1"
    names = sorted(i["imagename"] for i in yaml.safe_load(imgs.read_text())["container_images"])
    assert names == ["%s/tripleo/centos-binary-%s" % (reg.address, n) for n in
                     ("cron:17.0.2-7", "keystone:17.1.0-3", "mariadb:10.3.0-1")]


def test_container_image_prepare_entries_mix_labels_and_tags(plain_registry, tmp_path):
    """tag_from_label per entry: keystone by label, the rest on a fixed tag;
    a missing label fails the run with one line naming the labels there are."""
    reg = plain_registry
    seed(reg)
    cip = tmp_path / "cip.yaml"
    cip.write_text(yaml.safe_dump({"parameter_defaults": {"ContainerImagePrepare": [
        {"set": {"namespace": reg.address + "/tripleo", "tag": "latest"},
         "includes": ["cron|mariadb"]},
        # no tag of its own: kolla_builder skips tag_from_label when set gives one
        {"set": {"namespace": reg.address + "/tripleo"},
         "includes": ["keystone"], "tag_from_label": "version"},
    ]}}))
    env = tmp_path / "env.yaml"
    # keystone's version label (17.1.0) is not a pushed tag: a clear failure
    proc = prepare("-e", cip, "--release", "pike", "--tag", "latest", "--insecure-registry",
                   reg.address, "--output-env-file", env)
    assert_one_line_error(proc, "1 of 1 tag discoveries failed", "'17.1.0'",
                          "does not exist")
    assert not env.exists()
    images.seed_kolla_set(reg, "tripleo", "centos-binary-", "17.1.0", images=["keystone"],
                          image_labels={"keystone": LABELS["keystone"]})
    proc = prepare("-e", cip, "--release", "pike", "--tag", "latest", "--insecure-registry",
                   reg.address, "--output-env-file", env,
                   check=True)
    params = yaml.safe_load(env.read_text())["parameter_defaults"]
    assert params["DockerKeystoneImage"].endswith("/centos-binary-keystone:17.1.0")
    assert params["DockerCrondImage"].endswith("/centos-binary-cron:latest")
    # the floating tag left in the environment is called out
    assert "floating tags (latest)" in proc.stderr
    cip.write_text(cip.read_text().replace("tag_from_label: version",
                                           "tag_from_label: '{vendor}'"))
    proc = prepare("-e", cip, "--release", "pike", "--tag", "latest", "--insecure-registry",
                   reg.address, "--output-env-file", env)
    assert_one_line_error(proc, "no label 'vendor'", "its labels: build-date")
