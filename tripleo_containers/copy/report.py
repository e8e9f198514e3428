"""The failure part of an upload report: one line per reason.

Forty images from a source that was not marked insecure fail with the same
error; forty identical lines hide the one that differs. Errors read
``METHOD URL: text`` (registry.errors), and the URL's path names the image,
so the reason is the text with the path left out: same registry, same
request kind, same text is one reason.
"""
import collections
import re

from tripleo_containers.copy import engine

_REQUEST = re.compile(r"^(GET|HEAD|PUT|POST|PATCH|DELETE) ([a-z][a-z0-9+.-]*://[^/\s]+)\S*: ")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(text):
    """``text`` with control characters escaped: a registry's error message
    may hold a line break, which would split (or forge) a report line."""
    return _CONTROL.sub(lambda m: repr(m.group(0))[1:-1], text)


def reason_of(error):
    """``error`` with the path and query of its request URL left out."""
    return _REQUEST.sub(r"\1 \2/...: ", error or "", count=1)


def failure_lines(results):
    """Lines for the failed ``results`` (ImageResult), in order of first
    appearance: ``failed: SRC -> DST: ERROR`` for a reason only one image
    has, ``failed: N images: REASON: SRC, SRC, ...`` for a shared one."""
    groups = collections.OrderedDict()
    for result in results:
        if result.status == engine.FAILED:
            groups.setdefault(reason_of(result.error), []).append(result)
    lines = []
    for reason, failed in groups.items():
        if len(failed) == 1:
            lines.append("failed: %s -> %s: %s" % (
                failed[0].source, failed[0].destination, failed[0].error))
        else:
            lines.append("failed: %d images: %s: %s" % (
                len(failed), reason, ", ".join(str(r.source) for r in failed)))
    return [_one_line(line) for line in lines]
