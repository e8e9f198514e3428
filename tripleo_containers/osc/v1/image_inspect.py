"""openstack overcloud container image list / show / delete."""
import logging
import sys

from osc_lib import exceptions as osc_exc
from osc_lib.command import command

from tripleo_containers.osc.v1 import common

LOG = logging.getLogger(__name__)


def make_client(parsed_args, registry):
    """A client for these options, talking to ``registry`` (host:port)."""
    from tripleo_containers.registry import connect
    return common.run(connect.make_client, **common.registry_kwargs(parsed_args, registry))


def call(parsed_args, registry, func, *args, **kwargs):
    """Run ``func(client, *args)`` with a client for these options."""
    with make_client(parsed_args, registry) as client:
        return common.run(func, client, *args, **kwargs)


def parse_registry(text, origin):
    from tripleo_containers.registry import reference
    try:
        return reference.parse_registry(text, origin)
    except reference.InvalidReference as exc:
        raise osc_exc.CommandError(str(exc))


def parse_ref(text, what="image"):
    from tripleo_containers.registry import ops
    return common.run(ops.parse_ref, text, what)


class ListImages(common.NoBlankTable, command.Lister):
    """List the repositories and tags of a registry."""

    auth_required = False

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument(
            "--registry", metavar="<host:port>",
            help="Registry to list (default: the undercloud registry, "
                 "<br-ctlplane address>:8787, plain HTTP unless "
                 "--undercloud-registry-tls).")
        parser.add_argument(
            "--digests", action="store_true",
            help="Also show each tag's manifest digest (one HEAD per tag).")
        parser.add_argument(
            "--page-size", type=int, default=1000, metavar="<n>",
            help="Entries asked for per _catalog / tags/list request (default 1000).")
        common.add_undercloud_tls_option(parser)
        return common.add_registry_options(parser)

    def take_action(self, parsed_args):
        from tripleo_containers.registry import undercloud
        from tripleo_containers.registry import ops
        if parsed_args.page_size < 1:
            raise osc_exc.CommandError("--page-size must be at least 1")
        registry = parsed_args.registry or undercloud.default_push_destination()
        parse_registry(registry, "--registry")
        rows = call(parsed_args, registry, ops.list_images, registry,
                    page_size=parsed_args.page_size, digests=parsed_args.digests)
        columns = ("Repository", "Tag") + (("Digest",) if parsed_args.digests else ())
        return columns, [(r, t or "", d or "")[:len(columns)] for r, t, d in rows]


class ShowImage(command.ShowOne):
    """Show an image: digest, media type, platforms, labels, layers, size."""

    auth_required = False

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("image", metavar="<registry/name:tag|@digest>",
                            help="Image reference, e.g. 192.168.24.1:8787/"
                                 "tripleopike/centos-binary-keystone:current-tripleo.")
        parser.add_argument(
            "--platform", default="linux/amd64", metavar="<os/arch>",
            help="For a multi-platform image: which variant's config and "
                 "layers to show (default linux/amd64).")
        common.add_undercloud_tls_option(parser)
        return common.add_registry_options(parser)

    def take_action(self, parsed_args):
        # format_columns pulls in requests through osc_lib.utils: load it late
        from osc_lib.cli import format_columns
        from tripleo_containers.registry import ops
        ref = parse_ref(parsed_args.image)
        info = call(parsed_args, ref.registry, ops.show, ref, parsed_args.platform)
        layers = [dict(l) for l in info["layers"]]
        fields = (
            ("Name", info["name"]),
            ("Digest", info["digest"]),
            ("Media type", info["media_type"]),
            ("Platforms", format_columns.ListColumn(info["platforms"])),
            ("Platform digest", info["platform_digest"]),
            ("Created", info["created"] or ""),
            ("Labels", format_columns.DictColumn(info["labels"])),
            ("Layers", format_columns.ListDictColumn(layers)),
            ("Size", info["size"]),
        )
        return tuple(k for k, _ in fields), tuple(v for _, v in fields)


class DeleteImage(command.ShowOne):
    """Delete an image from a registry, by digest.

    Deleting a manifest removes every tag that points at it. The registry
    must allow deletes (distribution: storage.delete.enabled: true); its
    blobs are freed by the registry's garbage collection.
    """

    auth_required = False

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("image", metavar="<registry/name:tag|@digest>",
                            help="Image to delete; a tag is resolved to its digest first.")
        parser.add_argument("--yes", "-y", action="store_true",
                            help="Do not ask for confirmation.")
        common.add_undercloud_tls_option(parser)
        return common.add_registry_options(parser)

    def take_action(self, parsed_args):
        from tripleo_containers.registry import ops
        ref = parse_ref(parsed_args.image)
        with make_client(parsed_args, ref.registry) as client:
            digest = common.run(ops.resolve_digest, client, ref)
            if not parsed_args.yes:
                self._confirm(ref, digest)
            self._delete(client, ref, digest)
        return ("Name", "Digest", "Deleted"), (ref.name, digest, True)

    def _delete(self, client, ref, digest):
        from tripleo_containers.registry import client as client_mod
        from tripleo_containers.registry import ops
        try:
            return common.run(ops.delete, client, ref, digest)
        except osc_exc.CommandError as exc:
            refused = exc.__context__
            if not isinstance(refused, client_mod.DeleteRefused):
                raise
            raise osc_exc.CommandError(
                "%s %s: registry %s does not allow deletes (405 UNSUPPORTED); one "
                "started by `registry start`: stop it and start it again with `%s "
                "--delete-enabled` and the same --address and --state-dir (its images "
                "stay); another distribution registry: set storage.delete.enabled: "
                "true in its config and restart it (a pull-through mirror never "
                "deletes)" % (refused.method, refused.url, ref.registry,
                              common.sibling_command(self, "image delete",
                                                     "registry start")))

    def _confirm(self, ref, digest):
        stdin = getattr(self.app, "stdin", None) or sys.stdin
        if not common.isatty(stdin):
            raise osc_exc.CommandError(
                "not deleting %s without confirmation: pass --yes" % ref)
        stderr = getattr(self.app, "stderr", None) or sys.stderr
        stderr.write("Delete %s (%s) and every tag pointing at it? [y/N] " % (ref, digest))
        stderr.flush()
        if stdin.readline().strip().lower() not in ("y", "yes"):
            raise osc_exc.CommandError("%s not deleted" % ref)
