"""The browser session's cookie: the secret of a browser session (a `sessions` row), set by the
hosted sign-in page and read by the authorization endpoint, consent and sign-out pages.

`__Host-authsvc_session` (Secure, Path=/, no Domain) when AUTH_PUBLIC_URL is https;
`authsvc_session` on plain-http development setups, where a browser refuses `__Host-` cookies.
HttpOnly, and SameSite=Lax: sent on the top-level redirect from a client to
`/oauth/authorize`, never on another site's form POST. No Max-Age: it ends with the browser,
and the session row bounds it too (idle and absolute lifetimes, logout-all).
"""

from __future__ import annotations

from fastapi import Request, Response

from app.config import Settings

SECURE_COOKIE = "__Host-authsvc_session"
PLAIN_COOKIE = "authsvc_session"


def _is_https(settings: Settings) -> bool:
    return settings.public_url.startswith("https://")


def cookie_name(settings: Settings) -> str:
    return SECURE_COOKIE if _is_https(settings) else PLAIN_COOKIE


def browser_secret(request: Request, settings: Settings) -> str | None:
    """The browser session secret the request carries, if any."""
    return request.cookies.get(cookie_name(settings)) or None


def keep_browser_session(response: Response, secret: str, settings: Settings) -> None:
    response.set_cookie(
        cookie_name(settings),
        secret,
        path="/",
        secure=_is_https(settings),
        httponly=True,
        samesite="lax",
    )


def forget_browser_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        cookie_name(settings), path="/", secure=_is_https(settings), httponly=True, samesite="lax"
    )
