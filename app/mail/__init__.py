"""Outgoing mail: rendering (templates, links) and transports (senders). Delivery, with its
retries, is the outbox's (`app/services/operations/outbox_dispatcher.py`)."""

from app.mail.links import frontend_link
from app.mail.message import OutgoingEmail, recipient_domain
from app.mail.senders import (
    ConsoleEmailSender,
    EmailSender,
    SmtpEmailSender,
    build_email_sender,
)
from app.mail.templates import (
    email_changed_notice,
    mfa_disabled_notice,
    mfa_enabled_notice,
    password_changed_notice,
    password_reset_email,
    provider_linked_notice,
    recovery_code_used_notice,
    sign_in_attempts_notice,
    verification_email,
)

__all__ = [
    "ConsoleEmailSender",
    "EmailSender",
    "OutgoingEmail",
    "SmtpEmailSender",
    "build_email_sender",
    "email_changed_notice",
    "frontend_link",
    "mfa_disabled_notice",
    "mfa_enabled_notice",
    "password_changed_notice",
    "password_reset_email",
    "provider_linked_notice",
    "recipient_domain",
    "recovery_code_used_notice",
    "sign_in_attempts_notice",
    "verification_email",
]
