"""Typed registry errors, and the one place a response becomes one.

Every message reads like ``PUT https://h/v2/ns/x/manifests/t: CODE: text`` so a
user can see which request failed and what the registry said. URLs pass
through ``redact_url`` first: a blob redirect to object storage carries signed
query tokens, and a user may have written ``user:pass@`` into a URL.
"""
import json
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tripleo_containers import exceptions

# Query keys that carry credentials in registry and object-storage URLs
# (S3/Swift/GCS/Azure signed URLs, distribution's own upload state is not
# secret but is long and useless in a message, so it goes too).
_SECRET_KEYS = re.compile(
    r"(token|signature|sig|credential|key|secret|password|passwd|auth|"
    r"_state|x-amz-.*|x-goog-.*|expires|se|sp|sv|sr|st)$", re.I)


def secret_query_key(key):
    """True for a query parameter name whose value must not be shown."""
    return bool(_SECRET_KEYS.match(key))


def redact_url(url):
    """``url`` with userinfo and secret-looking query values replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = [(k, "***" if _SECRET_KEYS.match(k) else v)
                 for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*:/@")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text, secrets=()):
    """Remove known secret strings and bearer/basic credentials from text."""
    out = text or ""
    for secret in secrets:
        if secret and len(secret) >= 3:
            out = out.replace(secret, "***")
    out = re.sub(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+", r"\1 ***", out)
    return out


class RegistryError(exceptions.Error):
    """Base of every error the registry client raises.

    ``method``/``url`` say which request failed (url already redacted),
    ``status`` is the HTTP status (None for network errors), ``code`` the
    first registry error code if the body had one.

    ``temporary`` decides every retry: True only for what may go away by
    itself (408/429/5xx, resets, a body cut short). Anything else, a bug
    included, fails at once. ``retry_after`` is the registry's Retry-After
    in seconds, if it sent one.
    """

    temporary = False

    def __init__(self, message, method=None, url=None, status=None, code=None,
                 temporary=None, retry_after=None):
        self.method = method
        self.url = redact_url(url) if url else None
        self.status = status
        self.code = code
        self.detail = message
        self.retry_after = retry_after
        if temporary is not None:
            self.temporary = temporary
        if method and url:
            message = "%s %s: %s" % (method, self.url, message)
        super().__init__(message)


class Unauthorized(RegistryError):
    """401/403: credentials missing, wrong, or without the needed scope."""

    def __init__(self, message, registry=None, credential_source=None, **kw):
        self.registry = registry
        self.credential_source = credential_source
        if registry:
            tried = credential_source or "no credentials (none found for it)"
            message = "%s (registry %s, credentials from: %s)" % (
                message, registry, tried)
        super().__init__(message, **kw)


class NotFound(RegistryError):
    """The repository, tag, manifest or blob does not exist."""


class PushRefused(RegistryError):
    """405 on a write: the registry is a read-only mirror / pull-through cache."""


class TLSFailure(RegistryError):
    """The TLS handshake or certificate check failed."""


class Unreachable(RegistryError):
    """Connection refused or reset, DNS failure, timeout: nothing answered."""

    temporary = True


class DigestMismatch(RegistryError):
    """Content does not hash to the digest it was fetched or announced by."""


class UnsupportedManifest(RegistryError):
    """A manifest type this tool cannot copy byte-for-byte (schema1, unknown)."""


class TooLarge(RegistryError):
    """A response that should be small (manifest, token, error) is not."""


class Transient(RegistryError):
    """408/429/5xx."""

    temporary = True


class Interrupted(Transient):
    """The connection broke while a response body was being read."""


class Stalled(RegistryError):
    """A transfer moved too little for too long (see transport.Pace). Not
    retried: a trickling peer would otherwise multiply the bound."""


class Cancelled(RegistryError):
    """The run was cancelled (Ctrl-C, SIGTERM) while this request ran."""


_WRITES = ("PUT", "POST", "PATCH")
# Storage driver errnos that no retry within a run will cure.
_STORAGE_FULL = {28: "no space left on device", 122: "disk quota exceeded",
                 30: "read-only file system"}


def _detail_text(detail):
    """distribution's ``detail``: a string, or a storage driver error such as
    {"DriverName": "filesystem", "Enclosed": {"Op": "write", "Err": 28}}."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict):
        enclosed = detail.get("Enclosed")
        if isinstance(enclosed, dict) and isinstance(enclosed.get("Err"), int):
            errno = enclosed["Err"]
            return "%s %s: %s" % (enclosed.get("Op") or "storage",
                                  enclosed.get("Path") or "", _STORAGE_FULL.get(
                                      errno, "errno %d" % errno))
    return None


def _error_body(resp):
    """First (code, message, detail) of a registry error body, or Nones."""
    try:
        raw = resp.content[:65536]
        doc = json.loads(raw.decode("utf-8", "replace"))
    except (ValueError, AttributeError, RuntimeError):
        return None, None, None
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not errors or not isinstance(errors, list) or not isinstance(errors[0], dict):
        return None, None, None
    first = errors[0]
    code = str(first.get("code") or "") or None
    message = str(first.get("message") or "") or None
    detail = _detail_text(first.get("detail"))
    return code, message, detail[:300] if detail else None


def error_for(resp, method=None, url=None, registry=None,
              credential_source=None, secrets=(), what=None):
    """The typed error for an unexpected response ``resp``.

    ``what`` names the object (e.g. ``manifest ns/x:t``) for a 404.
    """
    method = method or resp.method
    url = url or resp.url
    status = resp.status_code
    code, message, detail = _error_body(resp)
    if message is None:
        text = ""
        try:
            text = resp.content[:200].decode("utf-8", "replace").strip()
        except (AttributeError, RuntimeError):
            pass
        message = "HTTP %d %s%s" % (status, resp.reason or "",
                                     (": " + text) if text and "<" not in text[:1] else "")
    if detail and status >= 500:
        # an UNKNOWN 500 says nothing; its detail is the actual cause
        message = "%s (%s)" % (message, detail)
    message = redact_text(message, secrets)
    body = "%s: %s" % (code, message) if code else message
    kw = dict(method=method, url=url, status=status, code=code)
    if status >= 500 and method in _WRITES:
        full = any(text in (detail or "") for text in _STORAGE_FULL.values())
        body += "; the registry failed to store the data%s" % (
            " (a storage error no retry will cure: free space or fix its "
            "storage, then run again)" if full else "")
        if full:
            return Transient(body, temporary=False, **kw)
    if status in (401, 403):
        return Unauthorized(body, registry=registry,
                            credential_source=credential_source, **kw)
    if status == 404:
        if what:
            body = "%s not found (%s)" % (what, body)
        # An upload session that expired or was lost: a new one may work.
        return NotFound(body, temporary=code == "BLOB_UPLOAD_UNKNOWN", **kw)
    if status == 405 and method in ("PUT", "POST", "PATCH", "DELETE"):
        return PushRefused(
            body + " (the registry refuses writes: it is a read-only mirror or "
            "pull-through cache; push to a registry that accepts pushes)", **kw)
    if status in (408, 429) or status >= 500:
        return Transient(body, retry_after=retry_after(resp), **kw)
    return RegistryError(body, **kw)


def retry_after(resp, limit=60.0):
    """Seconds from a Retry-After header (delta form only), at most ``limit``."""
    value = (resp.headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return min(float(value), limit)
    return None

