"""Scopes in plain words, for the consent page."""

from __future__ import annotations

from collections.abc import Iterable

# In the order the consent page lists them, before any permission.
_KNOWN_SCOPES = {
    "openid": "Confirm who you are (your account ID)",
    "profile": "See your name and username",
    "email": "See your email address",
    "offline_access": "Stay connected when you are not using the app",
}


def describe_scopes(scopes: Iterable[str]) -> list[tuple[str, str]]:
    """(scope, words) for each distinct scope: the OpenID Connect scopes first in a fixed
    order, then the other scopes (permission codenames) alphabetically."""
    distinct = {scope for scope in scopes if scope}
    known = [scope for scope in _KNOWN_SCOPES if scope in distinct]
    others = sorted(distinct.difference(_KNOWN_SCOPES))
    return [(scope, _KNOWN_SCOPES[scope]) for scope in known] + [
        (scope, f"Use the permission {scope}") for scope in others
    ]
