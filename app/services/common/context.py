"""What every use case may need besides the request's session, built once per request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models.base import utcnow
from app.security.audit_hmac import AuditHmac
from app.security.encryption import Encryptor
from app.security.password_policy import PasswordPolicy
from app.security.passwords import PasswordHasher
from app.services.common.deferred import DeferredWork
from app.services.common.mail_outbox import MailOutbox
from app.services.common.rate_limits import RateLimiter


def _no_data_encryptor() -> Encryptor:
    raise RuntimeError("this context has no data encryption key")


@dataclass(frozen=True, slots=True)
class ServiceContext:
    settings: Settings
    hasher: PasswordHasher
    limiter: RateLimiter
    outbox: MailOutbox
    deferred: DeferredWork
    audit_hmac: AuditHmac
    clock: Callable[[], datetime] = utcnow
    # AUTH_DATA_ENCRYPTION_KEY's encryptor (TOTP secrets), read on first use.
    data_encryptor: Callable[[], Encryptor] = _no_data_encryptor
    policy: PasswordPolicy = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", PasswordPolicy.from_settings(self.settings))


class Service:
    """Base of the use-case services: the request's session plus the shared context."""

    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        self.session = session
        self.context = context
        self.settings = context.settings
        self.hasher = context.hasher
        self.limiter = context.limiter
        self.outbox = context.outbox
        self.deferred = context.deferred
        self.clock = context.clock
        self.policy = context.policy
