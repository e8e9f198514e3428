"""Helpers shared by the command modules; standard library only."""
import logging
import shlex
import sys

from osc_lib import exceptions as osc_exc


def command_line():
    """The command as the user typed it, for file headers."""
    return "openstack " + " ".join(shlex.quote(a) for a in sys.argv[1:])


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


def registry_kwargs(parsed_args):
    """The registry options as the library's keyword arguments (upload,
    daemon upload, registry.connect.make_client: insecure, ca_bundles,
    credentials_file)."""
    return dict(insecure=parsed_args.insecure, ca_bundles=parsed_args.ca_bundles,
                credentials_file=parsed_args.registry_credentials)


def run(func, *args, **kwargs):
    """Call into the library; turn its errors into one-line CommandErrors."""
    from tripleo_containers import exceptions
    try:
        return func(*args, **kwargs)
    except exceptions.Error as e:
        logging.getLogger(__name__).debug("library error", exc_info=True)
        raise osc_exc.CommandError(str(e))
