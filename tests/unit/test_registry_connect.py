"""Building a registry client: one function for every command, layers
that import one way, a client closed by ``with``."""
import ast
import os

import pytest

import tripleo_containers
from tripleo_containers import exceptions
from tripleo_containers.registry import connect
from tripleo_containers.testing import images

PACKAGE = os.path.dirname(tripleo_containers.__file__)


def _imports(directory):
    """{module file: {imported tripleo_containers module}}, function-level
    imports included."""
    out = {}
    for name in sorted(os.listdir(os.path.join(PACKAGE, directory))):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(PACKAGE, directory, name)).read())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.update("%s.%s" % (node.module, a.name) for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        out["%s/%s" % (directory, name)] = found
    return out


@pytest.mark.parametrize("layer,below", [
    ("registry", ("tripleo_containers.copy", "tripleo_containers.prepare",
                  "tripleo_containers.validate", "tripleo_containers.build")),
    ("copy", ("tripleo_containers.prepare", "tripleo_containers.validate",
              "tripleo_containers.build")),
])
def test_layers_import_one_way(layer, below):
    wrong = sorted("%s imports %s" % (f, m) for f, mods in _imports(layer).items()
                   for m in mods if m.startswith(below))
    assert wrong == []


def _established_to(port):
    """Our open TCP connections to 127.0.0.1:``port``."""
    count = 0
    with open("/proc/net/tcp") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == port and fields[3] == "01":  # ESTABLISHED
                count += 1
    return count


def test_client_used_with_with_closes_its_connections(plain_registry):
    reg = plain_registry
    seeded = images.seed_kolla_set(reg.url, images=["cron"])
    cron = seeded.images["cron"]
    from tripleo_containers.registry import reference
    with connect.make_client([reg.address]) as client:
        assert client.head_manifest(reference.parse(cron.reference)).digest == cron.digest
        assert _established_to(reg.port) >= 1
    assert _established_to(reg.port) == 0


def test_ca_bundle_options(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    assert connect.parse_ca_bundles([str(ca), "h:1=%s" % ca]) == (str(ca), {"h:1": str(ca)})
    with pytest.raises(exceptions.InputError) as exc:
        connect.parse_ca_bundles(["h:1=%s" % (tmp_path / "none.pem")])
    assert "--ca-bundle h:1=" in str(exc.value) and "none.pem" in str(exc.value)
