"""Authorization codes: issued to a browser session's user for one checked request, redeemed
once at the token endpoint. A building block; it never commits.

A code is known only by its digest, lives `AUTH_AUTHORIZATION_CODE_TTL_SECONDS` (at most 60 s)
and is redeemed under a row lock, so of parallel redemptions exactly one finds it unspent. A
code that comes back after its redemption ends the session that redemption opened (RFC 6749
section 4.1.2: someone else holds it). Redeemed and expired codes are kept for a while after
expiry, so a late replay is still recognised as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.models import AuthorizationCode, User, UserSession
from app.repositories import AuthorizationCodeRepository
from app.security.opaque_tokens import new_opaque_token, token_digest
from app.security.pkce import verifier_matches
from app.services.authorization.requests import AuthorizationRequest

# How long a code's row outlives its expiry, to recognise a replay.
REPLAY_MEMORY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Redemption:
    """What presenting a code did: `code` is the row when it was unspent until now (its
    checks are still to be made), None when it was unknown; `replayed` when it had already
    been redeemed."""

    code: AuthorizationCode | None
    replayed: bool


class AuthorizationCodes:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.settings = settings
        self.codes = AuthorizationCodeRepository(session)

    async def issue(
        self,
        request: AuthorizationRequest,
        *,
        user: User,
        browser_session: UserSession,
        scope: str,
        now: datetime,
    ) -> str:
        """A new code for `request`, granting `scope` to its client; only the digest is kept."""
        await self.codes.delete_expired(now - REPLAY_MEMORY)
        code = new_opaque_token()
        await self.codes.create(
            code_hash=token_digest(code),
            client_id=request.client_id,
            user_id=user.id,
            browser_session_id=browser_session.id,
            redirect_uri=request.redirect_uri,
            scope=scope,
            nonce=request.nonce,
            code_challenge=request.code_challenge,
            token_version=user.token_version,
            created_at=now,
            expires_at=now + timedelta(seconds=self.settings.authorization_code_ttl_seconds),
        )
        return code

    async def redeem(self, code: str, now: datetime) -> Redemption:
        """Spend `code` (its row locked): whatever the checks that follow decide, it can never
        be redeemed again."""
        row = await self.codes.get_for_update_by_hash(token_digest(code))
        if row is None:
            return Redemption(code=None, replayed=False)
        if row.redeemed_at is not None:
            return Redemption(code=row, replayed=True)
        row.redeemed_at = now
        return Redemption(code=row, replayed=False)

    @staticmethod
    def is_valid_for(
        code: AuthorizationCode,
        *,
        client_id: str,
        redirect_uri: str | None,
        code_verifier: str | None,
        now: datetime,
    ) -> bool:
        """Whether a just-spent `code` was this client's, unexpired, asked for with this
        `redirect_uri` and proven by this PKCE verifier."""
        return (
            code.client_id == client_id
            and now < code.expires_at
            and redirect_uri == code.redirect_uri
            and code_verifier is not None
            and verifier_matches(code_verifier, code.code_challenge)
        )
