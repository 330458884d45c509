"""The one shape every mail takes on its way out, whatever the transport."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """A rendered mail to one recipient, with a plain-text and an HTML alternative."""

    to: str
    subject: str
    text: str
    html: str


def recipient_domain(address: str) -> str:
    """The domain of `address`, what logs may say about a recipient (the address itself is
    personal data)."""
    _, at, domain = address.rpartition("@")
    return domain if at else "<no domain>"
