"""Run the real `openstack` CLI (the installed plugin) in a subprocess."""
import os
import subprocess
import sys

# The console scripts next to this interpreter: the tox venv's, or the global ones.
BIN = os.path.dirname(sys.executable)
OPENSTACK = os.path.join(BIN, "openstack")
STANDALONE = os.path.join(BIN, "tripleo-containers")


def _run(program, args, cwd=None, env=None, timeout=300, check=False, input=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([program] + [str(a) for a in args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError("%s %s failed (%d):\n%s\n%s" % (
            os.path.basename(program), " ".join(map(str, args)), proc.returncode,
            proc.stdout, proc.stderr))
    return proc


def openstack(*args, **kwargs):
    """Run `openstack ARGS...`; returns CompletedProcess with text stdout/stderr.
    Keywords: cwd, env (added to os.environ), timeout, check, input."""
    return _run(OPENSTACK, args, **kwargs)


def standalone(*args, **kwargs):
    """Run the `tripleo-containers` console script (no openstackclient)."""
    return _run(STANDALONE, args, **kwargs)
