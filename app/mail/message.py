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
