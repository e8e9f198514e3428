"""Which composable services a deployment enables and runs in containers."""
import re

from tripleo_containers import data
from tripleo_containers import exceptions
from tripleo_containers import fileutil

# A service is containerized when the merged resource_registry maps it to a
# containerized template: docker/services/ (Pike..Stein, and ours) or a
# deployment/*/*-container*.yaml (Train and later).
_CONTAINERIZED = re.compile(r"(^|/)docker/services/|(^|/)deployment/.+-container[^/]*\.yaml$")


def default_roles_file():
    return data.path("heat-templates", "roles_data.yaml")


def load_roles(path):
    """The roles file as a list of {name, CountDefault, ServicesDefault}."""
    roles = fileutil.load_yaml(path, "roles file")
    if not isinstance(roles, list) or not roles:
        raise exceptions.InputError(
            "roles file %s: expected a non-empty list of roles "
            "(each with name and ServicesDefault)" % path)
    for i, role in enumerate(roles, 1):
        if not isinstance(role, dict) or not isinstance(role.get("name"), str):
            raise exceptions.InputError(
                "roles file %s: role %d has no name; each role is a mapping "
                "with name, CountDefault and ServicesDefault" % (path, i))
        services = role.get("ServicesDefault", [])
        if not isinstance(services, list):
            raise exceptions.InputError(
                "roles file %s: ServicesDefault of role %s must be a list"
                % (path, role["name"]))
    return roles


def _count(value, name):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise exceptions.InputError(
            "parameter %s=%r is not a number of nodes" % (name, value))


def role_counts(env, roles):
    """{role name: node count} from <Role>Count, else CountDefault (else 0)."""
    params = (env or {}).get("parameter_defaults") or {}
    return {r["name"]: _count(params.get("%sCount" % r["name"],
                                         r.get("CountDefault", 0)),
                              "%sCount" % r["name"])
            for r in roles}


def role_services(env, role):
    params = (env or {}).get("parameter_defaults") or {}
    name = "%sServices" % role["name"]
    services = params.get(name, role.get("ServicesDefault") or [])
    if not isinstance(services, list):
        raise exceptions.InputError("parameter %s must be a list of services" % name)
    return services


def enabled_services(env, roles):
    """Union of the services of every role deployed with a count > 0."""
    counts = role_counts(env, roles)
    enabled = set()
    for role in roles:
        if counts[role["name"]] > 0:
            enabled.update(role_services(env, role))
    return enabled


def containerized_services(env):
    """Services that the merged resource_registry maps to container templates."""
    registry = (env or {}).get("resource_registry") or {}
    return {name for name, target in registry.items()
            if isinstance(target, str) and _CONTAINERIZED.search(target)}


def neutron_driver(services):
    """The Neutron driver implied by the enabled services."""
    if "OS::TripleO::Services::OpenDaylightApi" in services:
        return "odl"
    if "OS::TripleO::Services::OVNController" in services:
        return "ovn"
    return "default"
