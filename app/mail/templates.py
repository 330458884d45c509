"""The mails this service sends, rendered from `templates/<name>.txt` and `.html`.

Templates use `string.Template` placeholders (`$link`); every value put into the HTML part is
HTML-escaped, so an address like `"<script>"@example.com` stays text.
"""

from __future__ import annotations

import html
from datetime import timedelta
from functools import cache
from importlib.resources import files
from string import Template

from app.mail.message import OutgoingEmail


def verification_email(to: str, link: str, valid_for: timedelta) -> OutgoingEmail:
    """Asks `to` to confirm the address by opening `link`."""
    return _render(
        "verify_email",
        to=to,
        subject="Verify your email address",
        link=link,
        valid_for=humanize_duration(valid_for),
    )


def password_reset_email(to: str, link: str, valid_for: timedelta) -> OutgoingEmail:
    """Offers `to` a `link` to choose a new password."""
    return _render(
        "password_reset",
        to=to,
        subject="Reset your password",
        link=link,
        valid_for=humanize_duration(valid_for),
    )


def email_changed_notice(to: str, new_address: str) -> OutgoingEmail:
    """Tells the old address `to` that the account now uses `new_address`."""
    return _render(
        "email_changed",
        to=to,
        subject="Your email address was changed",
        new_address=new_address,
    )


def sign_in_attempts_notice(to: str, attempts: int, window: timedelta) -> OutgoingEmail:
    """Tells the owner `to` that the account-wide limit of failed sign-ins tripped."""
    return _render(
        "sign_in_attempts",
        to=to,
        subject="Repeated failed sign-ins to your account",
        attempts=str(attempts),
        window=humanize_duration(window),
    )


def provider_linked_notice(to: str, provider: str, account: str) -> OutgoingEmail:
    """Tells the account's address `to` that the `provider` identity `account` (its email,
    or its id there) can now sign in to the account."""
    return _render(
        "provider_linked",
        to=to,
        subject=f"{provider} was linked to your account",
        provider=provider,
        account=account,
    )


def password_changed_notice(to: str) -> OutgoingEmail:
    """Tells `to` that the account's password was changed, and what to do if not by them."""
    return _render("password_changed", to=to, subject="Your password was changed")


def mfa_enabled_notice(to: str) -> OutgoingEmail:
    """Tells `to` that two-step sign-in was turned on (and the other devices signed out)."""
    return _render("mfa_enabled", to=to, subject="Two-step sign-in was turned on")


def mfa_disabled_notice(to: str, *, by_administrator: bool) -> OutgoingEmail:
    """Tells `to` that two-step sign-in was turned off, by the owner or by an administrator."""
    by = "by an administrator" if by_administrator else "from your account"
    return _render("mfa_disabled", to=to, subject="Two-step sign-in was turned off", by=by)


def recovery_code_used_notice(to: str, remaining: int) -> OutgoingEmail:
    """Tells `to` that a recovery code signed in, and how many are left."""
    return _render(
        "recovery_code_used",
        to=to,
        subject="A recovery code was used to sign in",
        remaining=_count(remaining, "recovery code"),
    )


def humanize_duration(duration: timedelta) -> str:
    """`"30 minutes"`, `"24 hours"`, `"1 hour and 30 minutes"`, `"7 days"`.

    Rounds down to whole minutes, so a mail never promises more time than the link has.
    """
    seconds = max(int(duration.total_seconds()), 0)
    if seconds < 60:
        return _count(seconds, "second")
    days, minutes = divmod(seconds // 60, 24 * 60)
    # "24 hours" reads better than "1 day" for a link; whole days from two on.
    if days >= 2 and minutes == 0:
        return _count(days, "day")
    hours, minutes = divmod(days * 24 * 60 + minutes, 60)
    parts = [_count(hours, "hour") if hours else "", _count(minutes, "minute") if minutes else ""]
    return " and ".join(part for part in parts if part)


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"


def _render(name: str, *, to: str, subject: str, **values: str) -> OutgoingEmail:
    text_template, html_template = _load(name)
    escaped = {key: html.escape(value, quote=True) for key, value in values.items()}
    return OutgoingEmail(
        to=to,
        subject=subject,
        text=text_template.substitute(values),
        html=html_template.substitute(escaped),
    )


@cache
def _load(name: str) -> tuple[Template, Template]:
    folder = files("app.mail") / "templates"
    return (
        Template((folder / f"{name}.txt").read_text(encoding="utf-8")),
        Template((folder / f"{name}.html").read_text(encoding="utf-8")),
    )
