"""`tripleo-containers`: the plugin's commands without openstackclient.

`openstack` spends about a second importing openstackclient, openstacksdk
and keystoneauth before any plugin code runs; none of our commands needs
them (they are all auth_required = False). For CI and scripts that call
upload in a loop, this console script runs the same command classes in a
bare cliff application: `tripleo-containers image upload --config-file F`
is `openstack overcloud container image upload --config-file F`.
"""
import sys

from cliff import app
from cliff import commandmanager

GROUP = "openstack.tripleo_containers.v1"
PREFIX = "overcloud container "


class _EntryPointCommand(object):
    """Defers importing a command module until that command runs."""

    def __init__(self, entry_point):
        self.entry_point = entry_point

    def load(self):
        return self.entry_point.load()


class _Commands(commandmanager.CommandManager):
    def load_commands(self, namespace):
        from importlib import metadata
        eps = metadata.entry_points()
        group = eps.select(group=namespace) if hasattr(eps, "select") else eps.get(namespace, [])
        for ep in group:
            name = ep.name.replace("_", " ")
            if name.startswith(PREFIX):
                name = name[len(PREFIX):]
            self.commands[name] = _EntryPointCommand(ep)


class TripleoContainers(app.App):
    # cliff takes the name from argv[0]; messages that show a command to run
    # next (`registry start`'s stop_with) need the console script's, also
    # under `python -m tripleo_containers.cli`
    NAME = "tripleo-containers"

    def __init__(self):
        super().__init__(
            description="Prepare and deliver the container images of a TripleO overcloud "
                        "(the commands of `openstack overcloud container ...`).",
            version=_version(),
            command_manager=_Commands(GROUP),
            deferred_help=True)


def _version():
    from importlib import metadata
    try:
        return metadata.version("tripleo-containers")
    except metadata.PackageNotFoundError:
        return "unknown"


def main(argv=None):
    return TripleoContainers().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
