"""TLS certificates and htpasswd files for test registries, made with the
real tools (openssl, htpasswd from apache2-utils) in a few milliseconds."""
import collections
import os
import re
import shutil
import subprocess


class ToolMissing(RuntimeError):
    """A tool needed to make the material is not installed."""


def _run_tool(argv, what, package, input_text=None):
    if shutil.which(argv[0]) is None:
        raise ToolMissing("%s not found (needed to %s): install it with "
                          "'apt-get install %s'" % (argv[0], what, package))
    proc = subprocess.run(argv, input=input_text, capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]
        raise RuntimeError("%s failed to %s: %s" % (argv[0], what, last))
    return proc.stdout


class TLSMaterial(collections.namedtuple(
        "TLSMaterial", "ca_cert ca_key cert key cert_dir")):
    """Paths of a CA, a server cert/key signed by it, and a directory that
    holds only ``ca.crt`` (usable as skopeo ``--cert-dir`` or as a
    ``/etc/docker/certs.d/HOST:PORT`` directory)."""


def make_tls(directory, hosts=("127.0.0.1", "localhost"), days=30):
    """Make a self-signed CA and a server certificate for ``hosts`` (SANs).

    EC P-256 keys: generated in milliseconds and accepted by Go, Python
    and skopeo alike.
    """
    os.makedirs(directory, exist_ok=True)
    p = lambda name: os.path.join(directory, name)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run_tool(["openssl", "req", "-x509"] + ec + [
        "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", str(days),
        "-subj", "/CN=tripleo-containers local registry CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        "make a CA certificate", "openssl")
    sans = ",".join(("IP:%s" if re.match(r"^[0-9.]+$|:", h) else "DNS:%s") % h
                    for h in hosts)
    with open(p("server.ext"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n" % sans)
    _run_tool(["openssl", "req"] + ec + [
        "-keyout", p("server.key"), "-out", p("server.csr"),
        "-subj", "/CN=%s" % hosts[0]], "make a server key", "openssl")
    _run_tool(["openssl", "x509", "-req", "-in", p("server.csr"),
               "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial",
               "-days", str(days), "-extfile", p("server.ext"),
               "-out", p("server.crt")], "sign the server certificate", "openssl")
    cert_dir = p("certs.d")
    os.makedirs(cert_dir, exist_ok=True)
    shutil.copyfile(p("ca.crt"), os.path.join(cert_dir, "ca.crt"))
    return TLSMaterial(p("ca.crt"), p("ca.key"), p("server.crt"),
                       p("server.key"), cert_dir)


def write_htpasswd(path, users, cost=5):
    """Write ``{user: password}`` as bcrypt htpasswd entries (what
    distribution accepts), mode 0600.

    Uses ``htpasswd`` with the password on stdin, so it never shows in a
    process list.  Every authenticated request costs one bcrypt check on
    the registry: keep ``cost`` low for tests (4).
    """
    lines = []
    for user, password in users.items():
        if ":" in user:
            raise ValueError("htpasswd user name %r must not contain ':'" % user)
        out = _run_tool(["htpasswd", "-niB", "-C", str(int(cost)), user],
                        "write bcrypt htpasswd entries", "apache2-utils",
                        input_text=password + "\n")
        lines.append(out.strip())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path
