"""openstack overcloud container registry start|stop: a local registry.

The same job as Kolla's ``tools/start-registry`` and the undercloud's
:8787 registry: Debian's docker-registry with its own config and storage,
optionally TLS, htpasswd auth, or a pull-through mirror of an upstream.
"""
import os

from osc_lib.command import command
from osc_lib import exceptions as osc_exc

from tripleo_containers.osc.v1 import common

DEFAULT_ADDRESS = "127.0.0.1:8787"


def default_state_dir():
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "tripleo-containers", "registry")


def _add_state_dir(parser):
    parser.add_argument(
        "--state-dir", metavar="<dir>", default=None,
        help="Directory holding the registry's config, PID file and logs "
             "(default: %s)" % default_state_dir())


def _read_secret_file(path, option):
    try:
        with open(path, "rb") as f:
            raw = f.read(64 << 10)
    except OSError as e:
        raise osc_exc.CommandError("%s %s: cannot read it (%s)"
                                   % (option, path, e.strerror or e))
    try:
        secret = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        secret = None
    if not secret or "\0" in secret:
        raise osc_exc.CommandError(
            "%s %s: expected the password as one line of text" % (option, path))
    return secret


def node_settings(address, tls):
    """How nodes reach the registry: (heat, docker daemon, kolla-ansible)."""
    if tls:
        return ("none needed for TLS; nodes must trust the CA that signed "
                "--tls-cert",
                "copy that CA to /etc/docker/certs.d/%s/ca.crt" % address,
                "docker_registry: %s  docker_registry_insecure: no" % address)
    return ("DockerInsecureRegistryAddress: %s" % address,
            '/etc/docker/daemon.json: {"insecure-registries": ["%s"]}' % address,
            "docker_registry: %s  docker_registry_insecure: yes" % address)


class StartRegistry(command.ShowOne):
    """Start a local container registry in the background."""

    auth_required = False

    def get_parser(self, prog_name):
        parser = super(StartRegistry, self).get_parser(prog_name)
        parser.add_argument(
            "--address", metavar="<host:port>", default=DEFAULT_ADDRESS,
            help="Address to listen on (default: %s; use the undercloud's "
                 "provisioning IP so nodes can reach it)" % DEFAULT_ADDRESS)
        parser.add_argument(
            "--storage", metavar="<dir>",
            help="Blob storage directory (default: <state-dir>/storage)")
        _add_state_dir(parser)
        parser.add_argument("--tls-cert", metavar="<file>",
                            help="Serve HTTPS with this certificate (PEM)")
        parser.add_argument("--tls-key", metavar="<file>",
                            help="Private key of --tls-cert (PEM)")
        parser.add_argument(
            "--htpasswd", metavar="<file>",
            help="Require basic auth against this bcrypt htpasswd file "
                 "(htpasswd -B)")
        parser.add_argument(
            "--mirror", metavar="<url>",
            help="Run as a pull-through cache of this upstream registry "
                 "(pushes are refused)")
        parser.add_argument(
            "--mirror-username", metavar="<user>",
            help="User name for the upstream of --mirror (sent to its token "
                 "service, as Docker Hub and Quay use; the registry cannot "
                 "answer an upstream's plain basic-auth challenge)")
        parser.add_argument(
            "--mirror-password-file", metavar="<file>",
            help="File holding the upstream password (never on the command line)")
        parser.add_argument(
            "--delete-enabled", action="store_true",
            help="Allow deleting manifests and blobs through the API")
        return parser

    def take_action(self, parsed_args):
        from tripleo_containers.registry import local
        a = parsed_args
        if bool(a.tls_cert) != bool(a.tls_key):
            raise osc_exc.CommandError("--tls-cert and --tls-key go together")
        if (a.mirror_username or a.mirror_password_file) and not a.mirror:
            raise osc_exc.CommandError(
                "--mirror-username/--mirror-password-file need --mirror URL")
        if bool(a.mirror_username) != bool(a.mirror_password_file):
            raise osc_exc.CommandError(
                "--mirror-username and --mirror-password-file go together")
        password = (_read_secret_file(a.mirror_password_file, "--mirror-password-file")
                    if a.mirror_password_file else None)
        reg = common.run(
            local.start, address=a.address, storage_dir=a.storage,
            state_dir=a.state_dir or default_state_dir(), tls_cert=a.tls_cert,
            tls_key=a.tls_key, htpasswd=a.htpasswd, mirror_url=a.mirror,
            mirror_username=a.mirror_username, mirror_password=password,
            delete_enabled=a.delete_enabled, detach=True)
        heat, daemon, kolla = node_settings(reg.address, not reg.insecure)
        rows = [
            ("url", reg.url), ("pid", reg.pid),
            ("mode", "mirror of %s" % a.mirror if a.mirror else "registry"),
            ("state_dir", reg.state_dir), ("storage", reg.storage_dir),
            ("access_log", reg.access_log),
            ("heat_environment", heat), ("docker_daemon", daemon),
            ("kolla_ansible_globals", kolla),
            ("stop_with", "%s --state-dir %s" % (
                common.sibling_command(self, "registry start", "registry stop"),
                reg.state_dir)),
        ]
        if reg.host in ("127.0.0.1", "localhost", "::1"):
            rows.append(("note", "listening on loopback only: other nodes cannot "
                                 "reach it; use --address <undercloud IP>:8787"))
        return tuple(zip(*rows))


class StopRegistry(command.ShowOne):
    """Stop the local container registry started with 'registry start'."""

    auth_required = False

    def get_parser(self, prog_name):
        parser = super(StopRegistry, self).get_parser(prog_name)
        _add_state_dir(parser)
        return parser

    def take_action(self, parsed_args):
        from tripleo_containers.registry import local
        reg = common.run(local.stop, parsed_args.state_dir or default_state_dir())
        return ("url", "pid", "stopped"), (reg.url, reg.pid, True)
