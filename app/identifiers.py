"""How the names people type are compared: emails, usernames and the sign-in name.

One rule, applied wherever a name is stored, looked up, counted or digested, so an address
typed as ` Ada@Example.COM ` is the same account, the same rate-limit budget and the same
audit digest as `ada@example.com`.
"""

from __future__ import annotations


def normalize_email(email: str) -> str:
    return email.strip().lower()


def normalize_username(username: str) -> str:
    return username.strip().lower()


def normalize_sign_in_name(name: str) -> str:
    """The name typed at sign-in (an email address or a username), as stored."""
    return name.strip().lower()
