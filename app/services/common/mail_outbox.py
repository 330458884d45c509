"""Where services put mail: delivered after the response, never inside a transaction."""

from __future__ import annotations

from typing import Protocol

from app.mail import OutgoingEmail


class MailOutbox(Protocol):
    def send_later(self, email: OutgoingEmail) -> None:
        """Queue `email` for delivery once the use case has committed; never raises."""
