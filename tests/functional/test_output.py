"""What the commands print, as a user reads it: upload's plan line first and
its closing totals, sizes in a unit that shows them, prepare's summary via
`openstack` too, no stray blank line from validate, and tables that fit a
terminal (while -f json stays whole)."""
import json
import os
import pty
import re
import select
import struct
import fcntl
import termios
import time

import yaml

from osc_cli import OPENSTACK, openstack, standalone
from tripleo_containers import data
from tripleo_containers.osc.v1 import progressbar
from tripleo_containers.testing import images

TOTAL_RE = re.compile(r"^total: (\d+) copied, (\d+) already present, (\d+) failed; "
                      r"(\d+ B|\d+\.\d (?:KiB|MiB|GiB)) moved in \d+\.\d s "
                      r"\((\d+ B|\d+\.\d (?:KiB|MiB|GiB))/s\)$")


def _lines(text):
    return [l for l in text.splitlines() if l.strip()]


def _upload(path, *args):
    proc = openstack("overcloud", "container", "image", "upload", "--config-file", path,
                     "-f", "value", *args)
    assert proc.returncode == 0, proc.stderr
    return _lines(proc.stderr)


def test_upload_says_plan_first_and_ends_with_totals(registry_factory, tmp_path):
    src, dst = registry_factory(), registry_factory()
    seeded = images.seed_kolla_set(src.url, "tripleo", "centos-binary-", "t1",
                                   images=["keystone", "glance-api", "nova-api"],
                                   sizes="tiny")
    refs = sorted(img.reference for img in seeded.images.values())
    path = tmp_path / "images.yaml"

    def write(names):
        path.write_text(yaml.safe_dump({
            "container_images": [{"imagename": r, "push_destination": dst.address}
                                 for r in names],
            "insecure_registries": [src.address, dst.address]}))
        return str(path)

    first = _upload(write(refs[:2]))
    assert first[0].startswith("plan: 2 images (0 already present)"), first
    assert re.search(r", \d+\.\d KiB to upload,", first[0]), first[0]
    copied = [l for l in first if "] copied: " in l]
    assert len(copied) == 2 and all(re.search(r"\(\d+\.\d KiB\)$", l) for l in copied)
    assert "0.0 MiB" not in "\n".join(first)
    total = TOTAL_RE.match(first[-1])
    assert total and total.group(1, 2, 3) == ("2", "0", "0"), first[-1]
    assert total.group(4).endswith("KiB")

    again = _upload(str(path))
    assert again[0].startswith("plan: 2 images (2 already present)"), again
    assert [l.split("] ")[1].split(":")[0] for l in again[1:3]] == ["already present"] * 2
    assert all(l.endswith("(0 B)") for l in again[1:3])
    total = TOTAL_RE.match(again[-1])
    assert total and total.group(1, 2, 3, 4) == ("0", "2", "0", "0 B"), again[-1]

    dry = _upload(write(refs), "--dry-run")
    assert dry[0].startswith("plan: 3 images (2 already present)"), dry
    assert dry[-1] == "dry run: nothing written" and not any(
        l.startswith("total:") for l in dry)


def test_sizes_keep_a_digit():
    assert [progressbar.size(n) for n in (0, 512, 1536, 3 << 20, 5 << 30)] == \
        ["0 B", "512 B", "1.5 KiB", "3.0 MiB", "5.0 GiB"]


def test_prepare_summary_via_both_clis_and_validate_prints_no_blank_line(tmp_path):
    args = ("--namespace", "docker.io/tripleopike", "--push-destination",
            "192.168.24.1:8787", "-e", "environments/docker.yaml",
            "--output-env-file", "docker_registry.yaml", "-f", "value")
    via_osc = openstack("overcloud", "container", "image", "prepare", *args,
                        cwd=str(tmp_path), check=True)
    via_own = standalone("image", "prepare", *args, cwd=str(tmp_path), check=True)
    for proc in (via_osc, via_own):
        summary = [l for l in proc.stderr.splitlines()
                   if re.match(r"^\d+ images, \d+ parameters$", l)]
        assert len(summary) == 1, proc.stderr
        assert summary[0].split()[0] == str(len(proc.stdout.splitlines()))
    val = openstack("overcloud", "container", "environment", "validate",
                    "-e", "environments/docker.yaml", "-e", "docker_registry.yaml",
                    cwd=str(tmp_path), check=True)
    assert val.stdout == "", repr(val.stdout)
    assert _lines(val.stderr)[-1].startswith("no errors, 0 warning(s)")


def _in_terminal(columns, *args, timeout=120):
    """Run `openstack ARGS` with stdout on a pseudo-terminal COLUMNS wide."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(OPENSTACK, [OPENSTACK] + list(args))
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)
    return out.decode("utf-8", "replace").replace("\r\n", "\n")


def _table_lines(text):
    return [l for l in text.splitlines() if l[:1] in ("+", "|")]


def test_tables_fit_a_terminal_and_json_stays_whole(registry_factory, tmp_path):
    envs = ("-e", data.path("environments", "docker.yaml"))
    # no image parameters set: one long error message per parameter
    shown = _in_terminal(80, "overcloud", "container", "environment", "validate", *envs)
    table = _table_lines(shown)
    assert len(table) > 10 and max(len(l) for l in table) <= 80, shown
    whole = openstack("overcloud", "container", "environment", "validate", *envs,
                      "-f", "json")
    messages = [f["Message"] for f in json.loads(whole.stdout)]
    assert messages and all(m.endswith(".yaml)") for m in messages), messages[:2]

    reg = registry_factory()
    labels = {"description": "x" * 300, "summary": "a long label " * 20}
    images.seed_kolla_set(reg.url, "tripleo", "centos-binary-", "t1",
                          images=["keystone"], sizes="tiny", labels=labels)
    ref = "%s/tripleo/centos-binary-keystone:t1" % reg.address
    show = ("overcloud", "container", "image", "show", ref,
            "--insecure-registry", reg.address)
    table = _table_lines(_in_terminal(80, *show))
    assert table and max(len(l) for l in table) <= 80, "\n".join(table)
    info = json.loads(openstack(*show, "-f", "json", check=True).stdout)
    assert info["Labels"]["description"] == "x" * 300


def test_an_empty_registry_lists_nothing_not_a_blank_line(plain_registry):
    args = ("overcloud", "container", "image", "list", "--registry", plain_registry.address,
            "--insecure-registry", plain_registry.address)
    assert openstack(*args, check=True).stdout == ""
    assert json.loads(openstack(*args, "-f", "json", check=True).stdout) == []
