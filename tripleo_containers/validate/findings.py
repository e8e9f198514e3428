"""The one result type of the validator."""
import collections

ERROR = "error"
WARNING = "warning"

Finding = collections.namedtuple("Finding", "severity check subject message")


def error(check, subject, message):
    return Finding(ERROR, check, subject, message)


def warning(check, subject, message):
    return Finding(WARNING, check, subject, message)


def sort_key(finding):
    return (finding.severity != ERROR, finding.check, finding.subject, finding.message)
