"""Images files -> copy jobs: merging, destinations, legacy pull_source, errors."""
import json
import subprocess
import sys

import pytest

from tripleo_containers import exceptions
from tripleo_containers.copy import engine, images_file


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _jobs(images, default="192.168.24.1:8787"):
    return images_file.jobs_from(images, lambda: default)


def test_merge_later_files_override_by_imagename(tmp_path):
    a = _write(tmp_path, "a.yaml", """
container_images:
- {imagename: docker.io/tripleopike/nova-api:t, push_destination: "h:1"}
- {imagename: docker.io/tripleopike/keystone:t}
insecure_registries: ["h:1"]
""")
    b = _write(tmp_path, "b.yaml", """
container_images:
- {imagename: docker.io/tripleopike/nova-api:t, push_destination: "h:2"}
- {imagename: "tripleoupstream/centos-binary-cron:latest", pull_source: "r.example:5000"}
insecure_registries: ["h:2", "h:1"]
""")
    images = images_file.load([a, b])
    assert images.insecure == ["h:1", "h:2"]
    jobs = [(str(j.source), str(j.destination)) for j in _jobs(images)]
    assert jobs == [
        ("docker.io/tripleopike/keystone:t", "192.168.24.1:8787/tripleopike/keystone:t"),
        ("docker.io/tripleopike/nova-api:t", "h:2/tripleopike/nova-api:t"),
        ("r.example:5000/tripleoupstream/centos-binary-cron:latest",
         "192.168.24.1:8787/tripleoupstream/centos-binary-cron:latest"),
    ]


def test_default_destination_only_looked_up_when_needed(tmp_path):
    f = _write(tmp_path, "a.yaml", "container_images:\n- {imagename: a.io/x:1, "
                                   "push_destination: 'h:1'}\n")
    calls = []
    images_file.jobs_from(images_file.load([f]), lambda: calls.append(1) or "x:1")
    assert calls == []


def test_untagged_and_pinned_sources(tmp_path):
    d = "sha256:" + "b" * 64
    f = _write(tmp_path, "a.yaml", "container_images:\n"
               "- {imagename: a.io/ns/x, push_destination: 'h:1'}\n"
               "- {imagename: 'a.io/ns/y:t@%s', push_destination: 'h:1'}\n" % d)
    x, y = _jobs(images_file.load([f]))
    assert str(x.destination) == "h:1/ns/x:latest" and x.source.tag == "latest"
    assert y.source.identifier == d and str(y.destination) == "h:1/ns/y:t"


def test_bad_reference_is_a_failed_result_not_a_crash(tmp_path):
    f = _write(tmp_path, "a.yaml", "container_images:\n"
               "- {imagename: 'a.io/NS/x:1', push_destination: 'h:1'}\n"
               "- {imagename: a.io/ns/y:1, push_destination: 'h:1'}\n")
    bad, good = _jobs(images_file.load([f]))
    assert isinstance(bad, engine.ImageResult) and bad.status == engine.FAILED
    assert f in bad.error and "lowercase" in bad.error
    assert isinstance(good, engine.CopyJob)


@pytest.mark.parametrize("text,words", [
    ("[1, 2]", "must be a mapping"),
    ("container_images: {a: b}", "must be a list"),
    ("container_images:\n- {push_destination: x}", "entry 1"),
    ("container_images:\n- {imagename: a, push_destination: [x]}", "push_destination"),
    ("insecure_registries: h:1", "insecure_registries"),
    ("container_images: [", "not valid YAML"),
])
def test_malformed_files_name_the_file(tmp_path, text, words):
    f = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(exceptions.InputError) as exc:
        images_file.load([f])
    assert f in str(exc.value) and words in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(exceptions.InputError) as exc:
        images_file.load([str(tmp_path / "nope.yaml")])
    assert "nope.yaml" in str(exc.value)


def test_command_module_imports_nothing_heavy():
    code = ("import sys; import tripleo_containers.osc.v1.image_upload; "
            "heavy = [m for m in ('requests', 'yaml', 'jinja2', 'urllib3', "
            "'tripleo_containers.copy', 'tripleo_containers.registry.client') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_prepare_writes_what_upload_reads(tmp_path):
    entries = [images_file.ImageEntry("docker.io/tripleopike/keystone:t", "h:1"),
               images_file.ImageEntry("docker.io/tripleopike/cron:t")]
    text = images_file.dump(entries, ["h:1"])
    assert text == ("container_images:\n"
                    "- imagename: docker.io/tripleopike/keystone:t\n"
                    "  push_destination: h:1\n"
                    "- imagename: docker.io/tripleopike/cron:t\n"
                    "insecure_registries:\n- h:1\n")
    loaded = images_file.load([_write(tmp_path, "a.yaml", text)])
    assert [l.entry for l in loaded.entries.values()] == entries


@pytest.mark.parametrize("field", ["imagename", "push_destination", "pull_source"])
def test_line_break_in_a_name_is_refused_at_load(tmp_path, field):
    entry = {"imagename": "a.io/ns/x:1", field: "a.io/ns/x:1\nfailed: forged"}
    f = _write(tmp_path, "a.yaml", "container_images: %s\n" % json.dumps([entry]))
    with pytest.raises(exceptions.InputError) as exc:
        images_file.load([f])
    message = str(exc.value)
    assert "\n" not in message
    assert f in message and "entry 1" in message and field in message


def test_different_images_to_one_destination_fail_both_rest_goes_on(tmp_path):
    a = _write(tmp_path, "a.yaml", "container_images:\n"
               "- {imagename: 'a.io/ns/x:1', push_destination: 'h:1'}\n"
               "- {imagename: 'a.io/ns/y:1', push_destination: 'h:1'}\n")
    b = _write(tmp_path, "b.yaml", "container_images:\n"
               "- {imagename: 'b.io/ns/x:1', push_destination: 'h:1'}\n")
    first, good, second = _jobs(images_file.load([a, b]))
    assert isinstance(good, engine.CopyJob)
    for bad in (first, second):
        assert bad.status == engine.FAILED and bad.destination == "h:1/ns/x:1"
        assert "%s entry 1 (a.io/ns/x:1)" % a in bad.error
        assert "%s entry 1 (b.io/ns/x:1)" % b in bad.error
    assert first.source == "a.io/ns/x:1" and second.source == "b.io/ns/x:1"


def test_same_image_spelled_twice_to_one_destination_is_no_conflict(tmp_path):
    f = _write(tmp_path, "a.yaml", "container_images:\n"
               "- {imagename: 'docker.io/library/x:1', push_destination: 'h:1'}\n"
               "- {imagename: 'x:1', push_destination: 'h:1'}\n")
    assert all(isinstance(j, engine.CopyJob) for j in _jobs(images_file.load([f])))
