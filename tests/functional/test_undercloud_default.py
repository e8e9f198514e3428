"""One convention for the undercloud registry, the tool's own default: plain
HTTP for list/show/delete/tag discover (as for prepare and upload) unless
--undercloud-registry-tls says otherwise; every other registry stays
TLS-verified.

Tests never use port 8787, so the CLI runs with the undercloud default moved
to a test registry (a sitecustomize on PYTHONPATH patches registry.undercloud
inside the real console script).
"""
import pytest

from osc_cli import openstack, standalone
from tripleo_containers.testing import images

SITECUSTOMIZE = """
from tripleo_containers.registry import undercloud
undercloud.PORT = %(port)d
undercloud.default_push_destination = lambda: %(address)r
"""


@pytest.fixture
def undercloud(plain_registry, tmp_path):
    """(registry, env): a plain registry the CLI takes as the undercloud default."""
    images.seed_kolla_set(plain_registry.url, "tripleo", "centos-binary-", "latest",
                          images=["keystone"], sizes="tiny")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE % dict(
        port=plain_registry.port, address=plain_registry.address))
    return plain_registry, {"PYTHONPATH": str(site)}


def _balanced(text):
    return text.count("(") == text.count(")")


@pytest.mark.parametrize("cli", [openstack, standalone])
def test_default_registry_is_plain_http_without_options(undercloud, cli):
    reg, env = undercloud
    prefix = ("overcloud", "container") if cli is openstack else ()
    listed = cli(*prefix, "image", "list", "-f", "value", env=env, check=True)
    assert listed.stdout.split() == ["tripleo/centos-binary-keystone", "latest"]
    ref = "%s/tripleo/centos-binary-keystone:latest" % reg.address
    shown = cli(*prefix, "image", "show", ref, "-f", "value", "-c", "Name",
                env=env, check=True)
    assert shown.stdout.strip() == ref


def test_undercloud_registry_tls_verifies_the_default(undercloud):
    reg, env = undercloud
    proc = standalone("image", "list", "--undercloud-registry-tls", env=env)
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "TLS verification failed for %s ([SSL: " % reg.address in err, err
    assert _balanced(err) and "Traceback" not in err, err


def test_other_registries_stay_tls_verified(undercloud, registry_factory):
    _, env = undercloud
    other = registry_factory()
    images.seed_kolla_set(other.url, "tripleo", "centos-binary-", "latest",
                          images=["keystone"], sizes="tiny")
    proc = standalone("image", "list", "--registry", other.address, env=env)
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "TLS verification failed for %s ([SSL: " % other.address in err, err
    assert "--insecure-registry %s" % other.address in err and _balanced(err), err
    ref = "%s/tripleo/centos-binary-keystone:latest" % other.address
    proc = standalone("image", "tag", "discover", "--image", ref,
                      "--tag-from-label", "version", env=env)
    assert proc.returncode != 0 and "TLS verification failed" in proc.stderr


def test_a_bad_registry_address_is_one_line():
    proc = standalone("image", "list", "--registry", "a b")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("--registry 'a b' is not a registry address")
