"""The consent page lists scopes in plain words, in an order that does not depend on the request."""

from __future__ import annotations

from app.api.pages import describe_scopes


def test_openid_scopes_come_first_in_a_fixed_order_then_permissions_alphabetically() -> None:
    described = describe_scopes(
        ["users:write", "email", "offline_access", "openid", "profile", "audit:read"]
    )

    assert described == [
        ("openid", "Confirm who you are (your account ID)"),
        ("profile", "See your name and username"),
        ("email", "See your email address"),
        ("offline_access", "Stay connected when you are not using the app"),
        ("audit:read", "Use the permission audit:read"),
        ("users:write", "Use the permission users:write"),
    ]


def test_the_order_of_the_request_does_not_matter() -> None:
    scopes = ["users:read", "email", "openid", "roles:read"]

    assert describe_scopes(scopes) == describe_scopes(reversed(scopes))


def test_each_scope_is_listed_once_and_blanks_not_at_all() -> None:
    assert describe_scopes(["email", "email", ""]) == [("email", "See your email address")]
