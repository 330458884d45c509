"""Contexts the hosted pages' templates are rendered with in tests: every name of each
template's contract (`FULL`), and only the names a route must pass (`MINIMAL`)."""

from __future__ import annotations

from typing import Any

FULL: dict[str, dict[str, Any]] = {
    "login.html": {
        "action": "/login",
        "next": "/oauth/authorize?client_id=app&state=xyz",
        "username": "ann@example.com",
        "error": "The username or password is not right.",
        "providers": [
            {"label": "Sign in with GitHub", "url": "/auth/oauth/github/authorize"},
            {"label": "Sign in with Google", "url": "/auth/oauth/google/authorize"},
        ],
    },
    "mfa.html": {
        "action": "/login/mfa",
        "next": "/oauth/authorize?client_id=app",
        "mfa_token": "mfa-token-value",
        "error": "That code is not right.",
    },
    "consent.html": {
        "action": "/consent",
        "client_name": "Example App",
        "client_id": "example-app",
        "scopes": [
            ("openid", "Confirm who you are (your account ID)"),
            ("users:read", "Use the permission users:read"),
        ],
        "user_label": "ann@example.com",
        "request": "client_id=example-app&scope=openid+users%3Aread&state=xyz",
    },
    "logout.html": {
        "action": "/logout",
        "client_name": "Example App",
        "hidden": {
            "id_token_hint": "eyJ.hint.sig",
            "post_logout_redirect_uri": "https://app.example/bye",
            "state": "xyz",
            "client_id": "example-app",
        },
    },
    "signed_out.html": {"message": "You can close this window."},
    "error.html": {
        "title": "Unknown application",
        "message": "The application that sent you here is not registered.",
        "back_url": "/",
    },
}

MINIMAL: dict[str, dict[str, Any]] = {
    "login.html": {"action": "/login", "next": "/"},
    "mfa.html": {"action": "/login/mfa", "next": "/", "mfa_token": "mfa-token-value"},
    "consent.html": FULL["consent.html"],
    "logout.html": {"action": "/logout"},
    "signed_out.html": FULL["signed_out.html"],
    "error.html": {"title": "Not found", "message": "There is nothing here."},
}

TEMPLATES = tuple(FULL)
VARIANTS = {"full": FULL, "minimal": MINIMAL}
