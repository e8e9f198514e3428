"""openstack overcloud container environment validate."""
import logging

from osc_lib import exceptions as osc_exc
from osc_lib.command import command

from tripleo_containers.osc.v1 import common

LOG = logging.getLogger(__name__)


class ValidateEnvironment(common.NoBlankTable, command.Lister):
    """Check Heat environments, service templates and image parameters before a deploy.

    Merges the environments like `openstack overcloud deploy`, follows every
    service of every deployed role through the resource_registry and reports
    what the deploy would trip on: missing or invalid files, image parameters
    no environment sets (or nobody declares), HA/ceph images without a tag and
    plain-HTTP registries missing from DockerInsecureRegistryAddress, and a
    deployment where no service runs in a container. Passwords and keys the
    deployment plan generates are assumed supplied (an info line counts them).
    Exits non-zero when there is an error.
    """

    auth_required = False

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        common.add_deployment_options(
            parser, "Heat environment, in the order deploy gets it (repeat).")
        parser.add_argument("--check-images", action="store_true",
                            help="Also check that every image exists in its registry "
                                 "(one manifest HEAD per image) and probe registries "
                                 "that are not in DockerInsecureRegistryAddress.")
        return parser

    def take_action(self, parsed_args):
        if not (parsed_args.environment_files or parsed_args.environment_directories):
            raise osc_exc.CommandError(
                "give the environments to check with -e FILE (repeat), e.g. "
                "-e environments/docker.yaml -e docker_registry.yaml")
        from tripleo_containers import validate
        common.use_installed_data(parsed_args, self.app.stderr)
        found = common.run(
            validate.validate, parsed_args.environment_files,
            env_dirs=parsed_args.environment_directories,
            roles_file=parsed_args.roles_file, check_images=parsed_args.check_images)
        self.errors = sum(1 for f in found if f.severity == validate.ERROR)
        self.warnings = sum(1 for f in found if f.severity == validate.WARNING)
        self.hints = validate.hints(found)
        return (("Severity", "Check", "Subject", "Message"),
                [tuple(f) for f in found])

    def run(self, parsed_args):
        self.errors = self.warnings = 0
        self.hints = []
        status = super().run(parsed_args)
        if self.errors:
            raise osc_exc.CommandError(
                "%d error(s) and %d warning(s): the deploy would fail; %s"
                % (self.errors, self.warnings, "; ".join(self.hints)))
        self.app.stderr.write(
            "no errors, %d warning(s): the environments, the templates and the "
            "image parameters fit together\n" % self.warnings)
        return status
