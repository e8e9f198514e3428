"""openstack overcloud container image prepare (work in progress)."""
from osc_lib.command import command


class Prepare(command.Lister):
    """Render the image catalog and write the images and Heat environment files."""

    auth_required = False

    def take_action(self, parsed_args):
        return (), ()
