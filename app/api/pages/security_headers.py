"""The security headers of every hosted page, and the CSP sources a page's form may lead to.

The pages run no JavaScript and carry no inline style: the policy allows stylesheets from this
service only and no scripts at all (`default-src 'none'`, no `script-src`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

# A CSP source this module emits: an http(s) origin, or a bare scheme (`com.example.app:`).
# Nothing else may reach the header (no spaces, quotes, `;` or `,` that would change it).
_ORIGIN_SOURCE = re.compile(r"https?://(\[[0-9a-fA-F:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?")
_SCHEME_SOURCE = re.compile(r"[a-z][a-z0-9+.-]*:")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Schemes that are not an app's redirect target and would open `form-action` to anything.
_REFUSED_SCHEMES = frozenset({"javascript", "data", "blob", "filesystem", "about", "file"})


def form_action_source(redirect_uri: str) -> str:
    """The CSP source a form whose POST redirects to `redirect_uri` (a registered client
    redirect URI) needs in `form-action`, as `csp_source` makes it: Chromium applies
    `form-action` to the redirects that follow a form's POST too."""
    return csp_source(redirect_uri)


def csp_source(url: str) -> str:
    """The CSP source that allows `url`: its origin for http/https (`https://app.example`,
    default port left out), `scheme:` for a private-use scheme (`com.example.app:`).

    Raises ValueError for anything else (no scheme, no host, a scheme like `javascript:`).
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme in _DEFAULT_PORTS:
        if not parts.hostname:
            raise ValueError(f"{url!r} has no host for a CSP source")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{url!r} has no valid port for a CSP source") from None
        source = f"{scheme}://{host}"
        if port is not None and port != _DEFAULT_PORTS[scheme]:
            source += f":{port}"
    elif _SCHEME.fullmatch(scheme) and scheme not in _REFUSED_SCHEMES:
        source = f"{scheme}:"
    else:
        raise ValueError(f"{url!r} has no scheme a CSP source may allow")
    return _checked_source(source)


def page_security_headers(
    *, form_action_sources: Iterable[str] = (), image_sources: Iterable[str] = ()
) -> dict[str, str]:
    """The headers of a hosted page. `form_action_sources` and `image_sources` (CSP sources
    as `form_action_source` makes them) are allowed beyond `'self'`."""
    form_action = " ".join(["'self'", *map(_checked_source, form_action_sources)])
    images = " ".join(["'self'", "https:", "data:", *map(_checked_source, image_sources)])
    policy = (
        "default-src 'none'; "
        "style-src 'self'; "
        f"img-src {images}; "
        f"form-action {form_action}; "
        "frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        # The page holds a CSRF token, and the user's name on the consent page.
        "Cache-Control": "no-store",
        # Not `no-referrer`: with it, Chromium sends `Origin: null` on the pages' own form
        # POSTs, which the CSRF check must refuse. `same-origin` still tells other sites
        # nothing (the authorization request's URL never leaves in a Referer).
        "Referrer-Policy": "same-origin",
    }


def _checked_source(source: str) -> str:
    # A bare `https:` (or `javascript:`) would open the policy to every site.
    is_private_scheme = (
        _SCHEME_SOURCE.fullmatch(source) is not None
        and source[:-1] not in _DEFAULT_PORTS
        and source[:-1] not in _REFUSED_SCHEMES
    )
    if not (is_private_scheme or _ORIGIN_SOURCE.fullmatch(source)):
        raise ValueError(f"{source!r} is not a CSP origin or private-use scheme source")
    return source
