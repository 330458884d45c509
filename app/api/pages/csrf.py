"""Double-submit CSRF protection of the hosted pages' forms.

A random token travels twice: in a cookie (HttpOnly, SameSite=Strict, `__Host-` prefixed and
Secure when the service is public over https) and in the form's hidden `csrf_token` field. A
POST is accepted only when both are present and equal, and when the browser does not say that
it comes from another site (`Origin`, `Sec-Fetch-Site`). `render_page` issues the token and sets
the cookie, so a page cannot show a form without it.
"""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from app.config import Settings
from app.errors import PermissionDenied
from app.runtime import runtime_of

FORM_FIELD = "csrf_token"
SECURE_COOKIE = "__Host-authsvc_csrf"
PLAIN_COOKIE = "authsvc_csrf"
# secrets.token_urlsafe(32): 43 characters of the URL-safe alphabet.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class CsrfRejected(PermissionDenied):
    """A form POST that may have been forged by another site. A route answers it with a 403
    page; left unhandled it is a 403 problem. `reason` says which check failed (for logs and
    tests, never shown)."""

    default_detail = (
        "This form has expired or was sent from another site. Go back, reload the page and "
        "try again."
    )

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def cookie_name(settings: Settings) -> str:
    """`__Host-authsvc_csrf` when the service is public over https, else `authsvc_csrf` (a
    browser refuses `__Host-` cookies without Secure, and Secure cookies over plain http)."""
    return SECURE_COOKIE if _is_https(settings) else PLAIN_COOKIE


def is_well_formed(token: str) -> bool:
    """Whether `token` has the shape of a token `issue` makes."""
    return _TOKEN.fullmatch(token) is not None


def issue(request: Request, response: Response | None = None) -> str:
    """The CSRF token of the page answering `request`: the one in the request's cookie when it
    is well-formed (other open tabs keep working), else a new one. With `response`, also sets
    the cookie on it (`render_page` does this for every page)."""
    token = request.cookies.get(cookie_name(_settings(request)), "")
    if not is_well_formed(token):
        token = secrets.token_urlsafe(32)
    if response is not None:
        set_cookie(request, response, token)
    return token


def set_cookie(request: Request, response: Response, token: str) -> None:
    """Put `token` in the CSRF cookie of `response` (a browser session cookie)."""
    settings = _settings(request)
    response.set_cookie(
        cookie_name(settings),
        token,
        path="/",
        secure=_is_https(settings),
        httponly=True,
        samesite="strict",
    )


def verify(request: Request, form_value: str | None) -> None:
    """Accept the form POST `request` only if it is not cross-site and its `csrf_token` field
    (`form_value`) equals the CSRF cookie. Raises CsrfRejected otherwise."""
    settings = _settings(request)
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRejected("Sec-Fetch-Site is cross-site")
    origin = request.headers.get("origin")
    if origin is not None and _origin(origin) != _origin(settings.public_url):
        raise CsrfRejected("Origin is not this service")
    cookie = request.cookies.get(cookie_name(settings))
    if not cookie:
        raise CsrfRejected("no CSRF cookie")
    if not form_value:
        raise CsrfRejected("no csrf_token field")
    # Bytes: compare_digest takes str only when it is ASCII, and a form value may not be.
    if not hmac.compare_digest(cookie.encode(), form_value.encode()):
        raise CsrfRejected("csrf_token does not match the cookie")


def _settings(request: Request) -> Settings:
    return runtime_of(request.app).settings


def _is_https(settings: Settings) -> bool:
    return urlsplit(settings.public_url).scheme == "https"


def _origin(url: str) -> tuple[str, str, int] | None:
    """The (scheme, host, port) origin of `url`, None when it has none (`null`, garbage)."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return scheme, parts.hostname, port
