"""The cookie that binds a sign-in with a provider to the browser that started it: set when the
flow starts (by the API's `authorize` or the hosted sign-in page's provider buttons), and
required, with the flow's `state`, by the callback `/auth/oauth/{provider}/callback`.

HttpOnly, scoped to `/auth/oauth`, Secure when AUTH_PUBLIC_URL is https, SameSite=Lax: sent on
the provider's top-level redirect back, never on another site's form POST. It lives as long as
the flow's state (AUTH_OAUTH_STATE_TTL_SECONDS).
"""

from __future__ import annotations

from fastapi import Response

from app.config import Settings

BROWSER_COOKIE = "authsvc_oauth"
COOKIE_PATH = "/auth/oauth"


def keep_flow_cookie(response: Response, secret: str, settings: Settings) -> None:
    response.set_cookie(
        BROWSER_COOKIE,
        secret,
        max_age=settings.oauth_state_ttl_seconds,
        path=COOKIE_PATH,
        secure=settings.public_url.startswith("https://"),
        httponly=True,
        samesite="lax",
    )


def forget_flow_cookie(response: Response) -> None:
    response.delete_cookie(BROWSER_COOKIE, path=COOKIE_PATH)
