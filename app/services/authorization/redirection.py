"""Where an authorization response may go: a client's registered redirect URIs, matched
exactly (RFC 6749 section 3.1.2.3, RFC 9700 section 4.1.3), and the response URL itself with
`iss` (RFC 9207).

The one exception to an exact match is a loopback redirect URI (`http://127.0.0.1/...`,
`http://[::1]/...`, `http://localhost/...`): a native app listens on whatever port the system
gives it, so any port matches (RFC 8252 section 7.3). Scheme, host, path and query must still
match exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlencode, urlsplit, urlunsplit

from app.services.admin.client_registration import LOOPBACK_HOSTS


def _loopback_parts(uri: str) -> tuple[str, str, str] | None:
    """(host, path, query) of an `http` loopback URI without user information or fragment;
    None for anything else."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return None
    if (
        parts.scheme != "http"
        or parts.hostname not in LOOPBACK_HOSTS
        or "@" in parts.netloc
        or parts.fragment
        or "#" in uri
    ):
        return None
    return parts.hostname, parts.path, parts.query


def is_registered_redirect(uri: str, registered: Iterable[str]) -> bool:
    """Whether `uri` is one of `registered`, character for character, or a loopback
    redirect URI that differs from one only in its port."""
    registered = list(registered)
    if uri in registered:
        return True
    given = _loopback_parts(uri)
    return given is not None and any(
        _loopback_parts(candidate) == given for candidate in registered
    )


def response_url(redirect_uri: str, parameters: Mapping[str, str | None]) -> str:
    """`redirect_uri` with `parameters` (those not None) added to its query, keeping the
    query it was registered with (RFC 6749 section 3.1.2)."""
    parts = urlsplit(redirect_uri)
    added = urlencode({name: value for name, value in parameters.items() if value is not None})
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
