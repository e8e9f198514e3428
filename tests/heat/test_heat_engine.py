"""The real Heat engine (openstack-heat from PyPI) validating our templates in-process.

Run with `tox -e heat`. Nothing is stubbed: Heat's template parser, function
resolution, resource plugins and Stack.validate run as in heat-engine.
What is left out is what needs a running service: no database (we never
store a stack), no Keystone (a RequestContext built with made-up user and
project ids, which validation only carries around), no RPC. Nested templates
come through python-heatclient's template_utils, as `openstack overcloud
deploy` sends them to Heat.
"""
import copy
import logging
import os
import warnings

import pytest
import yaml

from osc_cli import openstack
from tripleo_containers import data
from tripleo_containers.validate import templates

heat = pytest.importorskip("heat", reason="needs openstack-heat: run `tox -e heat`")

TEMPLATES = data.path("heat-templates")
ENVS = [data.path("environments", "docker.yaml"), data.path("environments", "docker-ha.yaml")]


@pytest.fixture(scope="module")
def engine():
    warnings.simplefilter("ignore")
    logging.getLogger("heat").setLevel(logging.ERROR)
    from oslo_config import cfg
    if not cfg.CONF._args:
        cfg.CONF([], project="heat")
    from heat.engine import resources
    resources.initialise()
    from heat.common import context
    from heat.engine import environment
    from heat.engine import stack
    from heat.engine import template
    from heatclient.common import template_utils

    class Engine(object):
        ctx = context.RequestContext(user_id="validator", project_id="validator",
                                     is_admin=False)

        def files_and_env(self, env_paths=ENVS, params=None):
            files, env = template_utils.process_multiple_environments_and_files(
                env_paths=list(env_paths))
            env.setdefault("parameter_defaults", {}).update(params or {})
            return files, env

        def stack(self, doc, files, env, strict=True):
            tmpl = template.Template(doc, files=files, env=environment.Environment(env))
            tmpl.validate()
            return stack.Stack(self.ctx, "validate", tmpl, strict_validate=strict)

        def validate_file(self, path, env_paths=ENVS):
            files, env = self.files_and_env(env_paths)
            tfiles, doc = template_utils.get_template_contents(template_file=path)
            files.update(tfiles)
            self.stack(doc, files, env, strict=False).validate()

    return Engine()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepare") / "docker_registry.yaml"
    openstack("overcloud", "container", "image", "prepare", "-e", ENVS[0], "-e", ENVS[1],
              "--push-destination", "192.168.24.1:8787", "--output-env-file", out,
              check=True)
    with open(out) as f:
        return yaml.safe_load(f)["parameter_defaults"]


ALL = [p for p in templates.collection(TEMPLATES) if os.path.basename(p) != "roles_data.yaml"]


@pytest.mark.parametrize("path", ALL, ids=lambda p: os.path.relpath(p, TEMPLATES))
def test_every_template_validates(engine, path):
    engine.validate_file(path)


def _overcloud(env):
    """A parent that instantiates, by type name and passing no properties, as
    the overcloud's service chain does, every service the default roles
    deploy and the environments map (the rest comes from tripleo-heat-templates)."""
    from tripleo_containers.prepare import services as svc
    enabled = svc.enabled_services(env, svc.load_roles(svc.default_roles_file()))
    services = sorted(k for k, v in env["resource_registry"].items()
                      if k in enabled and v != "OS::Heat::None")
    return {"heat_template_version": "pike",
            "resources": {s.split("::")[-1]: {"type": s} for s in services}}


def test_prepare_output_satisfies_every_mapped_service(engine, prepared):
    files, env = engine.files_and_env(params=prepared)
    parent = _overcloud(env)
    assert len(parent["resources"]) > 45
    engine.stack(parent, files, env).validate()


@pytest.mark.parametrize("param", ["DockerKeystoneImage", "DockerMysqlImage"])
def test_heat_and_our_validator_name_the_same_missing_parameter(engine, prepared, param,
                                                                tmp_path):
    from heat.common import exception
    from tripleo_containers.validate import validate
    params = {k: v for k, v in prepared.items() if k != param}
    files, env = engine.files_and_env(params=params)
    with pytest.raises(exception.StackValidationFailed) as err:
        engine.stack(_overcloud(env), files, env).validate()
    assert "Property %s not assigned" % param in str(err.value)
    env_file = tmp_path / "registry.yaml"
    env_file.write_text(yaml.safe_dump({"parameter_defaults": params}))
    found = validate(ENVS + [str(env_file)])
    assert [(f.check, f.subject) for f in found] == [("parameter-unset", param)]
    assert found[0].message.startswith("Property %s not assigned" % param)


def test_a_broken_template_is_caught(engine):
    # negative control: the harness must be able to fail
    from heat.common import exception
    from heatclient.common import template_utils
    path = os.path.join(TEMPLATES, "docker/services/keystone.yaml")
    files, env = engine.files_and_env()
    tfiles, doc = template_utils.get_template_contents(template_file=path)
    files.update(tfiles)
    broken = copy.deepcopy(doc)
    broken["outputs"]["role_data"]["value"]["docker_config"]["step_4"]["keystone"][
        "volumes"]["list_concat"][0] = {"get_attr": ["NoSuchResource", "volumes"]}
    with pytest.raises(exception.StackValidationFailed):
        engine.stack(broken, files, env, strict=False).validate()


@pytest.mark.parametrize("image,expected", [
    ("192.168.24.1:8787/tripleopike/centos-binary-mariadb:current-tripleo",
     "192.168.24.1:8787/tripleopike/centos-binary-mariadb:pcmklatest"),
    ("docker.io/tripleopike/centos-binary-mariadb:2017-11-01.1",
     "docker.io/tripleopike/centos-binary-mariadb:pcmklatest"),
    # why HA images need a tag: the registry port is what gets cut
    ("192.168.24.1:8787/tripleopike/centos-binary-mariadb", "192.168.24.1:pcmklatest"),
])
def test_bundle_image_is_retagged_at_the_last_colon(engine, image, expected):
    with open(os.path.join(TEMPLATES, "docker/services/pacemaker/database/mysql.yaml")) as f:
        doc = yaml.safe_load(f)
    value = doc["resources"]["PcmklatestImage"]["properties"]["value"]
    probe = {"heat_template_version": "pike",
             "parameters": {"DockerMysqlImage": {"type": "string"}},
             "outputs": {"pcmk": {"value": value}}}
    stack = engine.stack(probe, {}, {"parameters": {"DockerMysqlImage": image}})
    assert stack.outputs["pcmk"].get_value() == expected
