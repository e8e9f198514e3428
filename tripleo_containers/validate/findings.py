"""The one result type of the validator, and what to do about each kind."""
import collections

ERROR = "error"
WARNING = "warning"
INFO = "info"

Finding = collections.namedtuple("Finding", "severity check subject message")

_ORDER = {ERROR: 0, WARNING: 1, INFO: 2}

# One hint per kind of finding, so the summary says what to do about the
# findings at hand rather than one catch-all remedy.
_HINTS = (
    (("environment-section", "environment-format"),
     "fix the environment files named (deploy refuses them too)"),
    (("registry-path", "template-missing", "template-yaml", "template-format",
      "service-template"),
     "fix the resource_registry paths or the templates named"),
    (("no-containers",),
     "add environments/docker.yaml (and docker-ha.yaml for pacemaker HA) of "
     "your tripleo-heat-templates, then rerun prepare with the same -e files"),
    (("parameter-unset",),
     "unset image parameters: rerun prepare with the same -e files and roles "
     "file and pass its --output-env-file to deploy"),
    (("parameter-required",),
     "set the other unset parameters in an environment's parameter_defaults"),
    (("image-reference", "image-tag"),
     "give each image a valid name:tag (prepare --tag)"),
    (("image-exists",),
     "upload the missing images (openstack overcloud container image upload "
     "--config-file <prepare's images file>)"),
    (("insecure-registry",),
     "list plain-HTTP registries in DockerInsecureRegistryAddress (prepare "
     "does so for its push destination unless --push-destination-tls)"),
    (("parameter-undeclared",),
     "drop or rename parameters no template declares"),
)


def error(check, subject, message):
    return Finding(ERROR, check, subject, message)


def warning(check, subject, message):
    return Finding(WARNING, check, subject, message)


def info(check, subject, message):
    return Finding(INFO, check, subject, message)


def sort_key(finding):
    return (_ORDER.get(finding.severity, 3), finding.check, finding.subject,
            finding.message)


def hints(found, severities=(ERROR,)):
    """The remedies for the kinds of ``found`` at ``severities``, in a fixed order."""
    checks = {f.check for f in found if f.severity in severities}
    return [hint for kinds, hint in _HINTS if checks.intersection(kinds)]
