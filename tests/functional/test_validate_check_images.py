"""`environment validate --check-images` against a real local registry."""
import yaml

from osc_cli import openstack
from tripleo_containers import data

DOCKER = data.path("environments", "docker.yaml")


def _files(tmp_path, params):
    roles = tmp_path / "roles.yaml"
    roles.write_text(yaml.safe_dump([{"name": "Controller", "CountDefault": 1,
                                      "ServicesDefault": ["OS::TripleO::Services::Keystone"]}]))
    env = tmp_path / "registry.yaml"
    env.write_text(yaml.safe_dump({"parameter_defaults": params}))
    return ["-e", DOCKER, "-e", str(env), "--roles-file", str(roles)]


def _validate(*args):
    return openstack("overcloud", "container", "environment", "validate", "--check-images",
                     "-f", "value", *args)


def test_existing_images_pass_with_one_head_per_image(tmp_path, plain_registry,
                                                      request_counter):
    from tripleo_containers.testing import images
    images.seed_kolla_set(plain_registry.url, "tripleo", "centos-binary-", "t1",
                          images=["keystone"], sizes="tiny")
    image = "%s/tripleo/centos-binary-keystone:t1" % plain_registry.address
    counter = request_counter(plain_registry)
    proc = _validate(*_files(tmp_path, {
        "DockerKeystoneImage": image, "DockerKeystoneConfigImage": image,
        "DockerInsecureRegistryAddress": [plain_registry.address]}))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""
    assert counter.count(method="HEAD", route="manifest") == 1


def test_missing_image_and_unlisted_plain_http_registry_are_errors(tmp_path, plain_registry):
    from tripleo_containers.testing import images
    images.seed_kolla_set(plain_registry.url, "tripleo", "centos-binary-", "t1",
                          images=["keystone"], sizes="tiny")
    present = "%s/tripleo/centos-binary-keystone:t1" % plain_registry.address
    absent = "%s/tripleo/centos-binary-keystone:nope" % plain_registry.address
    proc = _validate(*_files(tmp_path, {
        "DockerKeystoneImage": present, "DockerKeystoneConfigImage": absent,
        "DockerInsecureRegistryAddress": [plain_registry.address]}))
    assert proc.returncode == 1
    assert proc.stdout.strip().splitlines() == [
        "error image-exists %s no such manifest in the registry (set by "
        "DockerKeystoneConfigImage); upload it first" % absent]

    proc = _validate(*_files(tmp_path, {"DockerKeystoneImage": present,
                                        "DockerKeystoneConfigImage": present}))
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error insecure-registry %s serves plain HTTP only"
                               % plain_registry.address), lines
