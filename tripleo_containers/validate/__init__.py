"""Check, before a deploy, that Heat environments, templates and images fit.

``validate(env_files, ...)`` merges the environments the way
`openstack overcloud deploy` does and returns a list of ``Finding``; it never
prints and raises only for unusable input (an unreadable roles file).
"""
from tripleo_containers.validate.core import validate  # noqa: F401
from tripleo_containers.validate.findings import ERROR, INFO, WARNING, Finding, hints  # noqa: F401
