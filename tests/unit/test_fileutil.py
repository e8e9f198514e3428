"""Atomic output writes: symbolic links, directories, failures name the target."""
import os

import pytest

from tripleo_containers import exceptions
from tripleo_containers import fileutil


def test_symlinked_output_is_written_through_and_the_link_stays(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "images.yaml"
    target.write_text("old\n")
    link = tmp_path / "images.yaml"
    link.symlink_to(target)
    fileutil.atomic_write_all({str(link): "new\n"})
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"
    # the temporary file was renamed next to the target, none left behind
    assert sorted(os.listdir(real_dir)) == ["images.yaml"]
    assert sorted(os.listdir(tmp_path)) == ["images.yaml", "real"]


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "out.yaml"
    link.symlink_to(tmp_path / "made.yaml")
    fileutil.atomic_write_all({str(link): "x\n"})
    assert os.path.islink(link) and (tmp_path / "made.yaml").read_text() == "x\n"


def test_directory_output_names_the_target_and_changes_nothing(tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("old\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(exceptions.InputError) as exc:
        fileutil.atomic_write_all({str(other): "new\n", str(out): "x\n"})
    message = str(exc.value)
    assert message.startswith("cannot write %s: " % out) and "directory" in message
    assert ".out." not in message
    assert other.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["other.yaml", "out"]


def test_one_file_named_by_two_outputs_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("")
    os.symlink(tmp_path / "a.yaml", tmp_path / "b.yaml")
    for second in (str(tmp_path / "a.yaml"), str(tmp_path / "." / "a.yaml"),
                   str(tmp_path / "b.yaml")):
        with pytest.raises(exceptions.InputError) as exc:
            fileutil.distinct_outputs({"--one": str(tmp_path / "a.yaml"), "--two": second,
                                       "--three": None})
        assert "--one and --two both name %s" % second in str(exc.value)
    fileutil.distinct_outputs({"--one": str(tmp_path / "a.yaml"), "--two": None,
                               "--three": str(tmp_path / "c.yaml")})
