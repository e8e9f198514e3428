"""prepare's output files through the real `openstack` CLI: one path given
for two outputs, symbolic links."""
import os

import yaml

from osc_cli import openstack


def _prepare(*args):
    return openstack("overcloud", "container", "image", "prepare", "--include", "keystone",
                     "--push-destination", "192.168.24.1:8787", *args)


def test_same_path_for_images_and_env_file_is_refused(tmp_path):
    out = tmp_path / "out.yaml"
    out.write_text("old\n")
    proc = _prepare("--output-images-file", out, "--output-env-file", out)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "--output-images-file and --output-env-file both name %s: give each "
        "output its own file" % out)
    assert out.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.yaml"]


def test_symlinked_outputs_keep_their_links(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    for name in ("images.yaml", "env.yaml"):
        (tmp_path / name).symlink_to(real / name)
    proc = _prepare("--output-images-file", tmp_path / "images.yaml",
                    "--output-env-file", tmp_path / "env.yaml")
    assert proc.returncode == 0, proc.stderr
    assert os.path.islink(tmp_path / "images.yaml") and os.path.islink(tmp_path / "env.yaml")
    images = yaml.safe_load((real / "images.yaml").read_text())["container_images"]
    assert images[0]["push_destination"] == "192.168.24.1:8787"
    assert "parameter_defaults" in yaml.safe_load((real / "env.yaml").read_text())


def test_directory_output_names_it(tmp_path):
    (tmp_path / "d").mkdir()
    proc = _prepare("--output-env-file", tmp_path / "d")
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        "cannot write %s: is a directory; give a file path" % (tmp_path / "d"))
