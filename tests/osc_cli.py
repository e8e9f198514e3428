"""Run the real `openstack` CLI (the installed plugin) in a subprocess."""
import os
import subprocess
import sys

# The openstack next to this interpreter: the tox venv's, or the global one.
OPENSTACK = os.path.join(os.path.dirname(sys.executable), "openstack")


def openstack(*args, cwd=None, env=None, timeout=300, check=False, input=None):
    """Run `openstack ARGS...`; returns CompletedProcess with text stdout/stderr."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([OPENSTACK] + [str(a) for a in args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError("openstack %s failed (%d):\n%s\n%s" % (
            " ".join(map(str, args)), proc.returncode, proc.stdout, proc.stderr))
    return proc


def standalone(*args, env=None, timeout=300):
    """Run the `tripleo-containers` console script (no openstackclient)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    script = os.path.join(os.path.dirname(sys.executable), "tripleo-containers")
    return subprocess.run([script] + [str(a) for a in args], env=full_env,
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
