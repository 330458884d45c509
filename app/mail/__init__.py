"""Outgoing mail: rendering (templates, links), transports (senders) and retrying delivery."""

from app.mail.dispatcher import MailDispatcher
from app.mail.links import frontend_link
from app.mail.message import OutgoingEmail
from app.mail.senders import (
    ConsoleEmailSender,
    EmailSender,
    SmtpEmailSender,
    build_email_sender,
)
from app.mail.templates import (
    email_changed_notice,
    password_changed_notice,
    password_reset_email,
    provider_linked_notice,
    sign_in_attempts_notice,
    verification_email,
)

__all__ = [
    "ConsoleEmailSender",
    "EmailSender",
    "MailDispatcher",
    "OutgoingEmail",
    "SmtpEmailSender",
    "build_email_sender",
    "email_changed_notice",
    "frontend_link",
    "password_changed_notice",
    "password_reset_email",
    "provider_linked_notice",
    "sign_in_attempts_notice",
    "verification_email",
]
