"""The README's test command on a fresh Debian machine: Debian's own python3
(externally managed, PEP 668) first on PATH must still get tox installed."""
import glob
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEBIAN_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"


def _debian_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYENV", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = DEBIAN_PATH
    env.update(extra)
    return env


def test_run_tests_bootstrap_with_debian_system_python(tmp_path):
    # The precondition the script has to cope with: a system-wide pip
    # install is refused by this python3.
    assert glob.glob("/usr/lib/python3*/EXTERNALLY-MANAGED"), \
        "this machine's /usr/bin/python3 is not Debian's externally managed one"
    refused = subprocess.run(
        ["python3", "-m", "pip", "install", "--dry-run", "tox"], env=_debian_env(),
        capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr

    venv = tmp_path / "tox-venv"
    proc = subprocess.run(
        [os.path.join(ROOT, "tools", "run-tests.sh"), "--bootstrap-only"],
        env=_debian_env(TOX_VENV=str(venv)), cwd=str(tmp_path),
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tox ready: %s/bin/tox" % venv in proc.stdout
    # made by the python3 first on PATH, i.e. Debian's
    cfg = (venv / "pyvenv.cfg").read_text()
    assert "home = /usr/bin" in cfg, cfg
    tox = subprocess.run([str(venv / "bin" / "tox"), "--version"], env=_debian_env(),
                         capture_output=True, text=True, timeout=60)
    assert tox.returncode == 0 and str(venv) in tox.stdout, tox.stdout + tox.stderr
    # a second run keeps the venv it made
    again = subprocess.run(
        [os.path.join(ROOT, "tools", "run-tests.sh"), "--bootstrap-only"],
        env=_debian_env(TOX_VENV=str(venv)), cwd=str(tmp_path),
        capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and (venv / "pyvenv.cfg").read_text() == cfg


def _fake_apt(tmp_path, apt_status):
    """install-deps.sh against a fake dpkg-query (nothing installed) and a fake
    apt-get that chatters like debconf does on a fresh machine."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "apt-get").write_text(
        "#!/bin/sh\necho \"apt-get $*\" >> %s/apt.log\n"
        "echo 'debconf: delaying package configuration, since apt-utils is not "
        "installed' >&2\necho 'Selecting previously unselected package x.'\nexit %d\n"
        % (tmp_path, apt_status))
    (bin_dir / "id").write_text("#!/bin/sh\necho 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return subprocess.run(
        [os.path.join(ROOT, "tools", "install-deps.sh")],
        env=_debian_env(PATH="%s:%s" % (bin_dir, DEBIAN_PATH)),
        capture_output=True, text=True, timeout=60)


def test_install_deps_keeps_apt_chatter_out_of_the_output(tmp_path):
    proc = _fake_apt(tmp_path, 0)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc
    installed = (tmp_path / "apt.log").read_text()
    assert "python3-venv" in installed and "haproxy" in installed


def test_install_deps_shows_apt_output_when_apt_fails(tmp_path):
    proc = _fake_apt(tmp_path, 100)
    assert proc.returncode != 0
    assert "debconf: delaying package configuration" in proc.stderr
