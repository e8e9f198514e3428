"""openstackclient plugin contract for tripleo-containers.

`openstack` imports this module on every run, so it imports nothing heavy.
"""
import logging

LOG = logging.getLogger(__name__)

API_NAME = "tripleo_containers"
API_VERSION_OPTION = "os_tripleo_containers_api_version"
DEFAULT_API_VERSION = "1"
API_VERSIONS = {"1": "tripleo_containers.osc.plugin.ClientV1"}


class ClientV1(object):
    """Nothing remote to hold: every command works without Keystone."""

    def __init__(self, **kwargs):
        self.options = kwargs


def make_client(instance):
    """Return the (lazy, offline) client for the plugin's commands."""
    LOG.debug("instantiating tripleo_containers client")
    return ClientV1(region_name=getattr(instance, "region_name", None))


def build_option_parser(parser):
    parser.add_argument(
        "--os-tripleo-containers-api-version",
        metavar="<tripleo-containers-api-version>",
        default=DEFAULT_API_VERSION,
        help="tripleo-containers API version, default=%s" % DEFAULT_API_VERSION)
    return parser
