"""openstack overcloud container image build (kolla)."""
import logging

from osc_lib.command import command

from tripleo_containers.osc.v1 import common

LOG = logging.getLogger(__name__)

_COLUMNS = {
    "build": ("Kolla image", "Image", "Status"),
    "template": ("Kolla image", "Image", "Dockerfile"),
    "list": ("Kolla image", "Image", "Selected as"),
    "dependencies": ("Kolla image", "Image", "Parent"),
}


class Build(command.Lister):
    """Build the images of an images file with kolla-build.

    Each entry's name is cut into kolla's parts (registry, namespace, name
    prefix, kolla image, tag); kolla renders its Dockerfiles with TripleO's
    template overrides (container-images/tripleo_kolla_template_overrides.j2)
    and builds them in the local Docker daemon ($DOCKER_HOST), named exactly
    as the images file names them (or on --registry). Needs kolla:
    pip install 'tripleo-containers[build]'.
    """

    auth_required = False

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--config-file", dest="config_files", metavar="FILE", action="append",
            required=True,
            help="Images file (container_images: [{imagename: ...}]), e.g. the "
                 "output of 'image prepare'. Repeat to merge several.")
        parser.add_argument(
            "--kolla-config-file", dest="kolla_config_files", metavar="FILE",
            action="append", default=[],
            help="Extra kolla-build config file (kolla.conf syntax); later ones win. "
                 "Repeatable.")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--list-images", dest="mode", action="store_const",
                          const="list", help="Show the images kolla would build "
                          "(parents included) and exit.")
        mode.add_argument("--list-dependencies", dest="mode", action="store_const",
                          const="dependencies",
                          help="Show each image with its parent and exit.")
        mode.add_argument("--template-only", dest="mode", action="store_const",
                          const="template",
                          help="Only render the Dockerfiles (no Docker daemon "
                               "needed); they stay in --work-dir or a printed "
                               "temporary folder.")
        parser.add_argument(
            "--exclude", metavar="NAME", action="append", default=[],
            help="Leave out an image: kolla name (nova-libvirt), repository or full "
                 "imagename. Repeatable.")
        parser.add_argument(
            "--work-dir", metavar="DIR",
            help="Folder for kolla's build context and our kolla config (kept). "
                 "Default: a temporary folder, removed after a build.")
        parser.add_argument(
            "--push", action="store_true",
            help="Push the built images to their registry (kolla-build --push).")
        parser.add_argument(
            "--base", choices=("debian", "rocky", "ubuntu"),
            help="kolla base distribution (default: kolla's, or the kolla config's).")
        parser.add_argument(
            "--registry", metavar="HOST[:PORT]",
            help="Build (and push) every image on this registry instead of the "
                 "one in its imagename, e.g. 192.168.24.1:8787.")
        parser.add_argument(
            "--prefix", metavar="PREFIX",
            help="Name prefix in front of kolla's image names (e.g. centos-binary-). "
                 "Default: found by matching kolla's image names.")
        parser.add_argument(
            "--suffix", metavar="SUFFIX", default="",
            help="Name suffix to strip (listing and --template-only only: kolla "
                 "cannot produce suffixed names).")
        parser.add_argument(
            "--kolla-build", metavar="PATH",
            help="kolla-build executable to use (e.g. one in a separate virtualenv). "
                 "Default: kolla importable by this Python, else kolla-build on PATH.")
        return parser

    def take_action(self, parsed_args):
        from tripleo_containers.build import kolla

        args = parsed_args
        mode = args.mode or "build"
        request = common.run(
            kolla.Request, args.config_files, args.kolla_config_files, mode=mode,
            exclude=args.exclude, work_dir=args.work_dir, push=args.push,
            base=args.base, registry=args.registry, prefix=args.prefix,
            suffix=args.suffix, kolla_build=args.kolla_build)
        # A real build runs for long: show kolla's log; otherwise only with -v.
        stream = self.app.stderr if mode == "build" else None
        result = common.run(kolla.build, request, on_line=_echo(stream))
        for imagename, reason in result.skipped:
            LOG.warning("not built: %s: %s", imagename, reason)
        for folder in result.work_dirs:
            LOG.warning("kolla work dir: %s", folder)
        rows = [tuple(row) for row in result.rows]
        if mode == "build":
            failed = [r for r in rows if r[2].startswith("failed")]
            if failed:
                self.produce_output(parsed_args, _COLUMNS[mode], rows)
                from osc_lib import exceptions as osc_exc
                raise osc_exc.CommandError("%d of %d images failed to build" % (
                    len(failed), len(rows)))
        return _COLUMNS[mode], rows


def _echo(stream):
    def on_line(line):
        if stream is not None:
            stream.write(line + "\n")
            stream.flush()
        else:
            LOG.info("%s", line)
    return on_line
