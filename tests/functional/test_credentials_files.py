"""Auth files that hold an entry for the registry which cannot be used, with
the real `openstack` CLI against an htpasswd registry: the error names the
file and the entry."""
import json

from osc_cli import openstack


def test_auth_entry_that_is_not_base64_is_named(tls_auth_registry, tmp_path):
    reg = tls_auth_registry
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {
        "https://%s/" % reg.address: {"auth": "%s:%s" % (reg.username, reg.password)}}}))
    env = {"REGISTRY_AUTH_FILE": str(auth_file), "HOME": str(tmp_path),
           "DOCKER_CONFIG": str(tmp_path / "docker")}
    proc = openstack("overcloud", "container", "image", "list", "--registry", reg.address,
                     "--ca-bundle", "%s=%s" % (reg.address, reg.ca_cert), env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert ("none usable: %s has an entry 'https://%s/' whose auth is not base64 of "
            "user:password" % (auth_file, reg.address)) in lines[0]
    assert reg.password not in proc.stderr
