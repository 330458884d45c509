"""Links that mails point at, built only from configuration."""

from __future__ import annotations

from urllib.parse import quote

from app.config import Settings


def frontend_link(settings: Settings, path: str, token: str) -> str:
    """`<AUTH_FRONTEND_URL>/<path>?token=<token>`, the token percent-encoded.

    Built from settings alone, never from the request's Host or X-Forwarded-* headers, so a
    forged header cannot send a victim's token to an attacker's site.
    """
    base = settings.frontend_url.rstrip("/")
    return f"{base}/{path.lstrip('/')}?token={quote(token, safe='')}"
