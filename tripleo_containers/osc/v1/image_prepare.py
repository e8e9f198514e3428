"""openstack overcloud container image prepare."""
import logging

from osc_lib.command import command

from tripleo_containers.osc.v1 import common

LOG = logging.getLogger(__name__)


class Prepare(command.Lister):
    """Render the image catalog; write the images file and the Heat environment.

    One run writes both files: the list of images to copy (for `openstack
    overcloud container image upload`) and a Heat environment whose image
    parameters already point at the push destination.
    """

    auth_required = False

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--template-file", metavar="<file>",
            help="Image catalog template (default: the installed "
                 "container-images/overcloud_containers.yaml.j2 for Pike, "
                 "container-images/train/tripleo_containers.yaml.j2 for Train).")
        shown = _catalog_defaults()
        parser.add_argument("--namespace", metavar="<registry/namespace>",
                            help="Registry and namespace of the source images "
                                 "(default: %s)." % shown("namespace"))
        parser.add_argument("--tag", metavar="<tag>",
                            help="Image tag (default: %s)." % shown("tag"))
        parser.add_argument("--prefix", metavar="<prefix>",
                            help="Image name prefix (default: %s); a missing "
                                 "trailing '-' is added (os -> os-)." % shown("name_prefix"))
        parser.add_argument("--suffix", metavar="<suffix>",
                            help="Image name suffix (default: %s); a missing "
                                 "leading '-' is added (foo -> -foo)." % shown("name_suffix"))
        parser.add_argument(
            "--set", metavar="<key=value>", action="append", default=[],
            dest="set_values",
            help="Set a catalog template value (repeat), e.g. --set "
                 "ceph_tag=v3.0.3 or --set neutron_driver=odl.")
        parser.add_argument("--include", metavar="<regex>", action="append",
                            default=[], help="Keep only images matching a regex (repeat).")
        parser.add_argument("--exclude", metavar="<regex>", action="append",
                            default=[], help="Drop images matching a regex (repeat).")
        parser.add_argument(
            "--push-destination", metavar="<host:port>", nargs="?", const=True,
            help="Registry the images are uploaded to and the overcloud pulls "
                 "from. Without a value: the undercloud registry (br-ctlplane "
                 "address, else <hostname>.ctlplane, else localhost) on :8787.")
        parser.add_argument(
            "--push-destination-tls", action="store_true",
            help="The push destination serves TLS. By default it is taken as a "
                 "plain-HTTP registry (as the undercloud's :8787 is) and listed "
                 "in DockerInsecureRegistryAddress.")
        common.add_registry_options(
            parser,
            insecure_help="A plain-HTTP registry (repeat); listed in "
                          "DockerInsecureRegistryAddress when an image uses it.",
            ca_help="CA certificates for registries read by --tag-from-label or "
                    "--pin-digests (repeatable).",
            credentials_help="YAML/JSON file {registry: {username: password}} for "
                             "those reads.")
        common.add_deployment_options(
            parser, "Heat environment of the deployment (repeat); only images of "
                    "enabled, containerized services are kept.")
        parser.add_argument("--output-images-file", metavar="<file>",
                            help="Write the images to copy (upload's --config-file).")
        parser.add_argument("--output-env-file", metavar="<file>",
                            help="Write the Heat environment with the image parameters.")
        parser.add_argument(
            "--output-kolla-globals", metavar="<file>",
            help="Also write a kolla-ansible globals.yml snippet (docker_registry, "
                 "docker_namespace, docker_image_name_prefix, openstack_release, "
                 "docker_registry_insecure) for the same images.")
        parser.add_argument(
            "--tag-from-label", metavar="<label|format>",
            help="Replace each image's tag by the one its config labels give: a "
                 "label name (version) or a format ({version}-{release}). Reads "
                 "each image's manifest and config at the source; the tag must "
                 "exist. Same as tag_from_label in ContainerImagePrepare entries.")
        parser.add_argument(
            "--pin-digests", choices=("source", "destination"),
            help="Write name@sha256:... image references into the environment: "
                 "'source' resolves the digests at the source registry now (upload "
                 "copies manifests byte for byte, so they hold at the push "
                 "destination); 'destination' resolves them at the push "
                 "destination, i.e. run prepare again after upload.")
        parser.add_argument(
            "--release", choices=("pike", "train"),
            help="TripleO release whose catalog, image filter and parameter names "
                 "to use. Default: train when --parameter-scheme container is given "
                 "or the environments hold a ContainerImagePrepare, else pike.")
        parser.add_argument(
            "--parameter-scheme", choices=("docker", "container"),
            help="Image parameter names: docker = Docker<X>Image (Pike), "
                 "container = Container<X>Image (Train and later). Default: the "
                 "release's.")
        return parser

    def take_action(self, parsed_args):
        from tripleo_containers import fileutil
        from tripleo_containers.prepare import core, output

        common.run(fileutil.distinct_outputs, {
            "--output-images-file": parsed_args.output_images_file,
            "--output-env-file": parsed_args.output_env_file,
            "--output-kolla-globals": parsed_args.output_kolla_globals})
        common.use_installed_data(parsed_args, self.app.stderr)
        values = common.key_values(parsed_args.set_values, "--set")
        for option, key in (("namespace", "namespace"), ("tag", "tag"),
                            ("prefix", "name_prefix"), ("suffix", "name_suffix")):
            if getattr(parsed_args, option) is not None:
                values[key] = getattr(parsed_args, option)
        request = core.Request(
            template_file=parsed_args.template_file, values=values,
            includes=parsed_args.include, excludes=parsed_args.exclude,
            push_destination=parsed_args.push_destination,
            push_destination_tls=parsed_args.push_destination_tls,
            insecure_registries=parsed_args.insecure,
            env_files=parsed_args.environment_files,
            env_dirs=parsed_args.environment_directories,
            roles_file=parsed_args.roles_file, scheme=parsed_args.parameter_scheme,
            release=parsed_args.release or (
                "train" if parsed_args.parameter_scheme == "container" else None),
            tag_from_label=parsed_args.tag_from_label,
            pin_digests=parsed_args.pin_digests, ca_bundles=parsed_args.ca_bundles,
            credentials_file=parsed_args.registry_credentials)
        result = common.run(core.prepare, request)
        files = {}
        if parsed_args.output_images_file:
            files[parsed_args.output_images_file] = output.images_file(result)
        if parsed_args.output_env_file:
            files[parsed_args.output_env_file] = output.env_file(
                result, common.command_line(self.app))
        if parsed_args.output_kolla_globals:
            files[parsed_args.output_kolla_globals] = common.run(
                output.kolla_globals, result)
        common.run(fileutil.atomic_write_all, files)
        # on stderr, not LOG.info: `openstack` shows only warnings by default
        self.app.stderr.write("%d images, %d parameters\n"
                              % (len(result.images), len(result.params)))
        return (("Image", "Push destination"),
                [(i.imagename, i.push_destination or "") for i in result.images])


def _catalog_defaults():
    """key -> text for --help, from each release's defaults file (the one
    place they live, so --help cannot drift from what prepare uses)."""
    from tripleo_containers import exceptions
    from tripleo_containers.prepare import catalog
    per_release = []
    for release in catalog.RELEASES:
        try:
            per_release.append((release, catalog.defaults(release)))
        except (exceptions.Error, OSError):
            pass

    def shown(key):
        texts = [(r, str(v.get(key)) or "none") for r, v in per_release
                 if v.get(key) is not None]
        if not texts:
            return "the catalog's"
        if len(set(t for _, t in texts)) == 1:
            text = texts[0][1]
        else:
            text = ", ".join("%s for %s" % (t, r.capitalize()) for r, t in texts)
        # %% survives argparse's own %-formatting of help texts
        return text.replace("%", "%%")
    return shown
