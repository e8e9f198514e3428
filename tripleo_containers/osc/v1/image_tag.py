"""openstack overcloud container image tag discover."""
from osc_lib.command import command

from tripleo_containers.osc.v1 import common
from tripleo_containers.osc.v1 import image_inspect


class DiscoverTag(command.Command):
    """Print the versioned tag an image's config labels give.

    Reads the image's manifest and config blob (not the tag list) and
    checks that the discovered tag exists; prints the tag alone, so
    TAG=$(openstack overcloud container image tag discover ...) works.
    """

    auth_required = False

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--image", required=True, metavar="<registry/name:tag>",
            help="Image whose labels give the tag, e.g. docker.io/tripleopike/"
                 "centos-binary-base:current-tripleo.")
        parser.add_argument(
            "--tag-from-label", required=True, metavar="<label|format>",
            help="A label name (version) or a format over label names "
                 "({version}-{release}).")
        parser.add_argument(
            "--platform", default="linux/amd64", metavar="<os/arch>",
            help="Variant of a multi-platform image to read (default linux/amd64).")
        common.add_undercloud_tls_option(parser)
        return common.add_registry_options(parser)

    def take_action(self, parsed_args):
        from tripleo_containers.registry import ops
        ref = image_inspect.parse_ref(parsed_args.image, "--image")
        found = image_inspect.call(parsed_args, ref.registry, ops.discover_tag, ref,
                                   parsed_args.tag_from_label, parsed_args.platform)
        self.app.stdout.write(found.tag + "\n")
