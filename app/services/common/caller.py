"""Who is calling, as far as the audit trail and the rate limits need to know."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    ip: str | None = None
    user_agent: str | None = None

    @property
    def user_agent_truncated(self) -> str | None:
        # Stored in a bounded column; a megabyte User-Agent must not fail a sign-in.
        return None if self.user_agent is None else self.user_agent[:512]
