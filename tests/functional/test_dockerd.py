"""A private Docker daemon (tripleo_containers.testing.dockerd) and upload
from it (tripleo_containers.build.daemon), checked with skopeo.

Images get into the daemon the way kolla's would: `docker pull` from a
seeded loopback registry (kolla-shaped layer chains), then our tool pushes
them from the daemon into another registry.
"""
import json
import os
import subprocess

import pytest

from tripleo_containers.testing import dockerd

pytest.importorskip("docker", reason="docker-py not installed "
                    "(pip install 'tripleo-containers[build]')")


@pytest.fixture
def daemon(registry_factory):
    """(dockerd, source registry, destination registry); the daemon trusts
    both loopback registries over plain HTTP."""
    src, dst = registry_factory(), registry_factory()
    try:
        d = dockerd.start(insecure_registries=[src.address, dst.address])
    except dockerd.DaemonError as e:
        if os.environ.get("TRIPLEO_CONTAINERS_REQUIRE_TOOLS"):
            pytest.fail("Docker daemon cannot start: %s" % e)
        pytest.skip("Docker daemon cannot start: %s" % e)
    yield d, src, dst
    d.stop()
    assert not os.path.exists(d.root)


def docker(d, *args):
    proc = subprocess.run(["docker"] + list(args), env=d.env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def write_images_file(path, names, destination, insecure):
    lines = ["container_images:"]
    for name in names:
        lines += ["- imagename: %s" % name, "  push_destination: %s" % destination]
    lines.append("insecure_registries: [%s]" % ", ".join(insecure))
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_daemon_starts_on_private_socket_and_stops_by_pid(daemon):
    d, src, _ = daemon
    assert dockerd.ping(d.socket)
    info = json.loads(docker(d, "info", "--format", "{{json .}}"))
    assert info["Driver"] == "vfs"
    assert info["DockerRootDir"] == d.data_root
    pid = d.pid
    d.stop()
    assert not d.is_running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not dockerd.ping(d.socket)


def test_upload_from_daemon_pushes_each_blob_once_with_expected_layers(
        daemon, skopeo, request_counter, tmp_path):
    from tripleo_containers.build import daemon as daemon_source
    from tripleo_containers.testing import images
    d, src, dst = daemon
    seeded = images.seed_kolla_set(src.url, "tripleo", "centos-binary-", "t",
                                   images=["nova-api", "nova-conductor"], sizes="tiny")
    names = ["%s/tripleo/centos-binary-%s:t" % (src.address, n) for n in ("nova-api", "nova-conductor")]
    seeded_cfgs = {n: skopeo.inspect(src, "tripleo/centos-binary-%s:t" % n, config=True)
                   for n in ("nova-api", "nova-conductor")}
    for name in names:
        docker(d, "pull", "-q", name)
    src.stop()   # from here on the images can only come from the daemon
    config = write_images_file(tmp_path / "images.yaml", names, dst.address, [dst.address])
    counter = request_counter(dst)

    results = daemon_source.upload([config], daemon_url=d.url)

    assert [(r.status, r.error) for r in results] == [("copied", None)] * 2
    unique_layers = set()
    for name, result in zip(("nova-api", "nova-conductor"), results):
        seeded_image = seeded.images[name]
        info = skopeo.inspect(dst, "tripleo/centos-binary-%s:t" % name)
        assert info["Digest"] == result.digest
        cfg = skopeo.inspect(dst, "tripleo/centos-binary-%s:t" % name, config=True)
        # layers are the daemon's uncompressed tars: digest == diff_id, same
        # chain as the image kolla (here: the seeded registry) produced
        seeded_cfg = seeded_cfgs[name]
        assert info["Layers"] == seeded_cfg["rootfs"]["diff_ids"] == cfg["rootfs"]["diff_ids"]
        assert cfg["config"]["Labels"] == seeded_image.labels
        raw = json.loads(skopeo.inspect(dst, "tripleo/centos-binary-%s:t" % name, raw=True))
        assert {l["mediaType"] for l in raw["layers"]} == {daemon_source.LAYER_TAR}
        unique_layers.update(info["Layers"])
    # base, openstack-base, nova-base shared: uploaded once, mounted once
    assert counter.count(method="PUT", route="upload", status=201) == len(unique_layers) + 2
    assert counter.count(method="POST", route="upload", query="mount=", status=201) == 3

    # a re-run reads nothing from the daemon's save stream and writes nothing
    counter.reset()
    again = daemon_source.upload([config], daemon_url=d.url)
    assert [(r.status, r.bytes_moved) for r in again] == [("already present", 0)] * 2
    assert counter.count(method="PUT") == counter.count(method="POST") == 0

    # skopeo copies it back out: the pushed image is complete and valid
    skopeo.copy(dst, "tripleo/centos-binary-nova-api:t", dst, "check/copy:1")


def test_missing_image_and_unreachable_daemon_are_one_line_errors(daemon, tmp_path):
    from tripleo_containers.build import daemon as daemon_source
    d, src, dst = daemon
    name = "%s/tripleo/centos-binary-keystone:t" % src.address
    config = write_images_file(tmp_path / "images.yaml", [name], dst.address, [dst.address])
    [result] = daemon_source.upload([config], daemon_url=d.url)
    assert result.status == "failed"
    assert result.error.startswith("image %s is not in the Docker daemon" % name)
    assert "\n" not in result.error
    url = "unix://%s" % (tmp_path / "nothing.sock")
    with pytest.raises(daemon_source.DaemonUnreachable) as e:
        daemon_source.upload([config], daemon_url=url)
    assert str(e.value).startswith("Docker daemon at %s is not reachable: " % url)
    assert "\n" not in str(e.value)
