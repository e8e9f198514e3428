"""heat-templates/ and environments/: shape, self-containment, and their fit
with the image catalog (the consistency Pike lacked)."""
import collections
import importlib.util
import os

import pytest
import yaml

from tripleo_containers import data
from tripleo_containers.prepare import catalog
from tripleo_containers.prepare import environments
from tripleo_containers.prepare import services
from tripleo_containers.validate import templates

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATES = data.path("heat-templates")
ENVS = [data.path("environments", "docker.yaml"), data.path("environments", "docker-ha.yaml")]
SERVICE_KEYS = ("service_name", "config_settings", "step_config", "docker_config")
CONTAINER_KEYS = ("image", "net", "privileged", "restart", "volumes")


def _gen():
    spec = importlib.util.spec_from_file_location(
        "gen_heat_templates", os.path.join(REPO, "tools", "gen_heat_templates.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _gen()
SPEC = GEN.load_spec()


def _all_templates():
    return [p for p in templates.collection(TEMPLATES)
            if os.path.basename(p) != "roles_data.yaml"]


def _load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def _walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _get_params(doc):
    return {n["get_param"] for n in _walk(doc)
            if isinstance(n, dict) and isinstance(n.get("get_param"), str)}


def _merged():
    env, _ = environments.load(ENVS)
    return env


def _service_templates():
    """(relative path, doc) of every template whose outputs carry role_data."""
    out = []
    for path in _all_templates():
        doc = _load(path)
        if "role_data" in (doc.get("outputs") or {}):
            out.append((os.path.relpath(path, TEMPLATES), doc))
    return out


def test_committed_templates_are_what_the_generator_writes():
    rendered = GEN.render_all()
    on_disk = {os.path.relpath(p, TEMPLATES).replace(os.sep, "/") for p in _all_templates()}
    assert on_disk == set(rendered), "run tools/gen_heat_templates.py"
    for rel, text in rendered.items():
        with open(os.path.join(TEMPLATES, rel)) as f:
            assert f.read() == text, "%s differs: run tools/gen_heat_templates.py" % rel


def test_templates_are_pike_and_self_contained():
    root = os.path.realpath(TEMPLATES)
    for path in _all_templates():
        doc = _load(path)
        assert doc["heat_template_version"] == "pike", path
        for res in (doc.get("resources") or {}).values():
            kind = res["type"]
            if templates.is_file_type(kind):
                target = os.path.realpath(os.path.join(os.path.dirname(path), kind))
                assert target.startswith(root + os.sep), (path, kind)
                assert os.path.isfile(target), (path, kind)
            else:
                assert kind.startswith("OS::"), (path, kind)


@pytest.mark.parametrize("rel,doc", _service_templates(), ids=lambda v: v if isinstance(v, str) else "")
def test_service_template_shape(rel, doc):
    params = doc["parameters"]
    for name in templates.STANDARD_PARAMETERS:
        assert name in params, "%s lacks %s" % (rel, name)
    image_params = [n for n in params if templates.is_image_param(n)]
    for name in image_params:
        assert "default" not in params[name], "%s: %s must have no default" % (rel, name)
        assert params[name]["type"] == "string"
    # every declared parameter is used (a stale one would be set for nothing)
    used = _get_params(doc)
    for name in params:
        assert name in used or name in templates.STANDARD_PARAMETERS, (rel, name)
    role_data = doc["outputs"]["role_data"]["value"]
    host_side = rel.startswith("puppet" + os.sep)
    for key in SERVICE_KEYS[:3] if host_side else SERVICE_KEYS:
        assert key in role_data, (rel, key)
    config = [n for n in image_params if n.endswith("ConfigImage")]
    if config:
        pc = role_data["puppet_config"]
        assert pc["config_image"] == {"get_param": config[0]}
        assert pc["config_volume"] and pc["step_config"]
        assert "kolla_config" in role_data
    for step, containers in role_data.get("docker_config", {}).items():
        assert step in ("step_1", "step_2", "step_3", "step_4", "step_5"), (rel, step)
        for name, c in containers.items():
            for key in CONTAINER_KEYS:
                assert key in c, (rel, name, key)
            assert c["image"]["get_param"] in image_params, (rel, name)
            common = c["volumes"]["list_concat"][0]
            assert common == {"get_attr": ["ContainersCommon", "volumes"]}, (rel, name)
            if c["restart"] == "always" and "healthcheck" in c:
                assert c["healthcheck"]["test"]


def test_long_running_services_declare_host_prep_and_upgrade_tasks():
    keystone = _load(os.path.join(TEMPLATES, "docker/services/keystone.yaml"))
    role_data = keystone["outputs"]["role_data"]["value"]
    assert any("/var/log/containers/keystone" in t["with_items"]
               for t in role_data["host_prep_tasks"])
    assert any(t.get("service", {}).get("name") == "httpd" for t in role_data["upgrade_tasks"])


@pytest.mark.parametrize("rel", ["clustercheck", "haproxy", "rabbitmq", "database/mysql",
                                 "database/redis"])
def test_pacemaker_variants_exist_for_docker_ha(rel):
    assert os.path.isfile(os.path.join(TEMPLATES, "docker/services/pacemaker", rel + ".yaml"))


@pytest.mark.parametrize("key", sorted(k for k, v in SPEC.items() if v.get("bundle")))
def test_bundles_retag_at_the_last_colon(key):
    doc = _load(os.path.join(TEMPLATES, key + ".yaml"))
    image = "Docker%sImage" % SPEC[key]["image"]
    value = doc["resources"]["PcmklatestImage"]["properties"]["value"]
    head, tag = value["list_join"][1]
    assert tag == "pcmklatest"
    assert head["yaql"]["data"] == {"get_param": image}
    assert "rightSplit" in head["yaql"]["expression"]
    assert 'maxSplits => 1' in head["yaql"]["expression"]
    # the bundle (puppet hieradata) and the tagging container use the re-tag
    rd = doc["outputs"]["role_data"]["value"]
    pcmk = {"get_attr": ["PcmklatestImage", "value"]}
    assert pcmk in rd["config_settings"].values()
    assert pcmk in list(_walk(rd["docker_config"]["step_1"]))


def test_environments_map_only_existing_templates_inside_the_collection():
    root = os.path.realpath(TEMPLATES)
    for env_file in ENVS:
        with open(env_file) as f:
            text = f.read()
        assert text.startswith("#") and "Usage" in text, env_file
        env = environments.parse_file(env_file)
        assert set(env) == {"resource_registry"}, env_file
        for name, target in env["resource_registry"].items():
            if target == "OS::Heat::None":
                continue
            assert os.path.isfile(target), (env_file, name)
            assert os.path.realpath(target).startswith(root + os.sep)


def test_docker_ha_switches_to_pacemaker_bundles():
    registry = _merged()["resource_registry"]
    for svc in ("Clustercheck", "HAproxy", "MySQL", "RabbitMQ", "Redis"):
        assert "/docker/services/pacemaker/" in registry["OS::TripleO::Services::" + svc]
    for svc in ("OS::TripleO::Services::Keepalived", "OS::TripleO::Tasks::ControllerPreConfig",
                "OS::TripleO::Tasks::ControllerPostConfig"):
        assert registry[svc] == "OS::Heat::None"


def test_service_filter_sees_containers_and_host_services_apart():
    containerized = services.containerized_services(_merged())
    assert "OS::TripleO::Services::Keystone" in containerized
    assert "OS::TripleO::Services::MySQL" in containerized
    for host_side in ("Docker", "Pacemaker", "PacemakerRemote"):
        assert "OS::TripleO::Services::" + host_side not in containerized


def _catalog_params():
    """{service short name: params the catalog writes for it}, all drivers."""
    by_service = collections.defaultdict(set)
    written = set()
    cat = catalog.Catalog()
    for driver in ("default", "ovn", "odl"):
        for entry in cat.render({"neutron_driver": driver}):
            written.update(entry["params"])
            for svc in entry["services"]:
                by_service[svc.split("::")[-1]].update(entry["params"])
    return by_service, written


def test_catalog_gives_every_image_a_service_template_needs():
    """Enabling any one service, prepare writes every image its template needs."""
    by_service, _ = _catalog_params()
    index = templates.TemplateIndex(_merged()["resource_registry"])
    gaps = []
    for key, entry in sorted(SPEC.items()):
        needed = {p for p in index.required(os.path.join(TEMPLATES, key + ".yaml"))
                  if templates.is_image_param(p)}
        for svc in entry.get("services", ()):
            missing = needed - by_service[svc]
            if missing:
                gaps.append("%s (%s): %s" % (svc, key, ", ".join(sorted(missing))))
    assert not gaps, ("the catalog's entries for these services lack parameters their "
                      "templates need (add the service to the entry's services): %s" % gaps)


def test_every_catalog_parameter_is_declared_by_a_template():
    _, written = _catalog_params()
    index = templates.TemplateIndex(_merged()["resource_registry"])
    declared = set()
    for path in _all_templates():
        declared |= index.declared(path)
    assert written - declared == set()
    # and every image parameter a template declares is one the catalog writes
    assert {p for p in declared if templates.is_image_param(p)} - written == set()
