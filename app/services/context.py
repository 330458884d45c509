"""What every use case may need besides the request's session, built once per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from app.config import Settings
from app.models.base import utcnow
from app.security.password_policy import PasswordPolicy
from app.security.passwords import PasswordHasher
from app.services.outbox import MailOutbox
from app.services.rate_limits import RateLimiter


@dataclass(frozen=True, slots=True)
class ServiceContext:
    settings: Settings
    hasher: PasswordHasher
    limiter: RateLimiter
    outbox: MailOutbox
    clock: Callable[[], datetime] = utcnow
    policy: PasswordPolicy = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", PasswordPolicy.from_settings(self.settings))
