"""Helpers shared by the command modules; standard library only."""
import logging
import os
import shlex
import sys

from osc_lib import exceptions as osc_exc


def program(app):
    """The program the user ran: `openstack` or `tripleo-containers`."""
    return getattr(app, "NAME", None) or "openstack"


def command_line(app):
    """The command as the user typed it, for file headers."""
    return " ".join([program(app)] + [shlex.quote(a) for a in sys.argv[1:]])


def sibling_command(cmd, own, other):
    """Another command of ours as the user would type it through the program
    that runs ``cmd`` (whose own last words are ``own``): for ``registry
    stop`` that is `openstack overcloud container registry stop` or
    `tripleo-containers registry stop`."""
    name = getattr(cmd, "cmd_name", None) or "overcloud container " + own
    return "%s %s%s" % (program(cmd.app), name[:len(name) - len(own)], other)


class NoBlankTable(object):
    """Mixin for a Lister: no rows in a table print nothing, where cliff's
    table formatter prints a blank line (validate with no findings, an
    empty registry)."""

    def produce_output(self, parsed_args, column_names, data):
        data = list(data)
        if not data and getattr(parsed_args, "formatter", None) == "table":
            return 0
        return super().produce_output(parsed_args, column_names, data)


def isatty(stream):
    """stream.isatty(), False for a stream without one or a closed one."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def key_values(items, option):
    """[KEY=VALUE, ...] -> dict; a malformed item is a one-line CommandError."""
    out = {}
    for text in items or ():
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise osc_exc.CommandError(
                "%s %r is not KEY=VALUE (e.g. %s tag=current-tripleo)"
                % (option, text, option))
        out[key.strip()] = value
    return out


def add_deployment_options(parser, env_help):
    """-e/--environment-file, --environment-directory and -r/--roles-file,
    with the semantics of `openstack overcloud deploy`."""
    parser.add_argument("-e", "--environment-file", metavar="<file>",
                        action="append", default=[], dest="environment_files",
                        help=env_help)
    parser.add_argument("--environment-directory", metavar="<dir>",
                        action="append", default=[], dest="environment_directories",
                        help="Directory whose *.yaml environments are used, sorted, "
                             "before the -e files (repeat).")
    parser.add_argument("-r", "--roles-file", metavar="<file>",
                        help="Roles file (default: the installed roles_data.yaml).")


# Options naming data files that a checkout and the installed package both
# carry (environments/, heat-templates/, container-images/).
DATA_OPTIONS = (("environment_files", "-e"), ("environment_directories",
                                              "--environment-directory"),
                ("roles_file", "--roles-file"), ("template_file", "--template-file"))


def use_installed_data(parsed_args, stderr):
    """A relative data path that is not under the current directory, e.g.
    ``-e environments/docker.yaml`` run outside a checkout, is taken from the
    installed data folders (as `openstack overcloud deploy --templates` finds
    its tree); each substitution is said on ``stderr``."""
    from tripleo_containers import data

    def resolve(path, option):
        if not path or os.path.isabs(path) or os.path.exists(path):
            return path
        rel = os.path.normpath(path)
        if rel.startswith(os.pardir):
            return path
        try:
            found = data.path(rel)
        except FileNotFoundError:
            return path
        stderr.write("%s %s: not in %s; using the installed %s\n"
                     % (option, path, os.getcwd(), found))
        return found

    for dest, option in DATA_OPTIONS:
        value = getattr(parsed_args, dest, None)
        if isinstance(value, list):
            setattr(parsed_args, dest, [resolve(v, option) for v in value])
        elif value:
            setattr(parsed_args, dest, resolve(value, option))


INSECURE_HELP = ("Talk plain HTTP to this registry (repeatable); the undercloud "
                 "registry on :8787 is plain HTTP.")
CA_BUNDLE_HELP = ("CA certificates to verify a registry's TLS with; without "
                  "host:port it applies to every registry (repeatable).")
CREDENTIALS_HELP = ("YAML/JSON file {registry: {username: password}}; wins over "
                    "~/.docker/config.json and containers auth.json.")


def add_registry_options(parser, insecure_help=INSECURE_HELP, ca_help=CA_BUNDLE_HELP,
                         credentials_help=CREDENTIALS_HELP):
    """--insecure-registry, --ca-bundle and --registry-credentials, shared by
    every command that talks to registries; read them with registry_kwargs."""
    parser.add_argument("--insecure-registry", dest="insecure", metavar="<host:port>",
                        action="append", default=[], help=insecure_help)
    parser.add_argument("--ca-bundle", dest="ca_bundles", metavar="[<host:port>=]<file>",
                        action="append", default=[], help=ca_help)
    parser.add_argument("--registry-credentials", metavar="<file>",
                        help=credentials_help)
    return parser


def add_undercloud_tls_option(parser):
    """--undercloud-registry-tls, for commands given a registry to talk to."""
    parser.add_argument(
        "--undercloud-registry-tls", action="store_true",
        help="The undercloud registry (the address `prepare --push-destination` "
             "without a value resolves to, port 8787) serves TLS: verify it. "
             "Without this, as in prepare and upload, it is talked to over "
             "plain HTTP; every other registry is TLS-verified unless given "
             "with --insecure-registry.")
    return parser


def _undercloud_plain(parsed_args, registry):
    """True when ``registry`` is the undercloud default and no TLS option
    (--undercloud-registry-tls, a --ca-bundle naming it) says it serves TLS."""
    if getattr(parsed_args, "undercloud_registry_tls", False):
        return False
    if any(b.partition("=")[0] == registry for b in parsed_args.ca_bundles if "=" in b):
        return False
    from tripleo_containers.registry import undercloud
    # Only a :8787 address can be the default: spare other registries the lookup
    if not registry.endswith(":%d" % undercloud.PORT):
        return False
    return registry == undercloud.default_push_destination()


def registry_kwargs(parsed_args, registry=None):
    """The registry options as the library's keyword arguments (upload,
    daemon upload, registry.connect.make_client: insecure, ca_bundles, credentials_file).

    ``registry``: the one registry the command talks to; when it is the
    undercloud default it is plain HTTP, as prepare and upload take it.
    """
    insecure = list(parsed_args.insecure)
    if registry and registry not in insecure and _undercloud_plain(parsed_args, registry):
        insecure.append(registry)
    return dict(insecure=insecure, ca_bundles=parsed_args.ca_bundles,
                credentials_file=parsed_args.registry_credentials)


def run(func, *args, **kwargs):
    """Call into the library; turn its errors into one-line CommandErrors."""
    from tripleo_containers import exceptions
    try:
        return func(*args, **kwargs)
    except exceptions.Error as e:
        logging.getLogger(__name__).debug("library error", exc_info=True)
        raise osc_exc.CommandError(str(e))
