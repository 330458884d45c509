"""Access tokens and the OAuth2 token response for a session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.config import Settings
from app.services.tokens.assurance import methods_of
from app.services.tokens.client_authentication import AuthenticatedClient
from app.services.tokens.sign_in_sessions import IssuedSession


class AccessTokenEncoder(Protocol):
    def encode(self, claims: Mapping[str, Any], *, audiences: Sequence[str] = ()) -> str: ...


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """RFC 6749 section 5.1 successful token response."""

    access_token: str
    expires_in: int
    refresh_token: str | None
    scope: str
    token_type: str = "bearer"


class TokenIssuer:
    def __init__(self, encoder: AccessTokenEncoder, settings: Settings) -> None:
        self.encoder = encoder
        self.ttl = settings.access_token_ttl_seconds

    def for_session(self, issued: IssuedSession) -> TokenResponse:
        """An RFC 9068 access token for the session's user, plus the session's refresh token."""
        user, family = issued.user, issued.session
        access_token = self.encoder.encode(
            {
                "sub": str(user.id),
                "client_id": family.client_id,
                "scope": family.scope,
                "roles": sorted(role.name for role in user.roles),
                "sid": str(family.id),
                "ver": user.token_version,
                "auth_time": int(family.authenticated_at.timestamp()),
                "acr": family.acr,
                # Sessions begun before second factors existed recorded no methods.
                **({"amr": methods_of(family.amr)} if family.amr else {}),
            }
        )
        return TokenResponse(
            access_token=access_token,
            expires_in=self.ttl,
            refresh_token=issued.refresh_token,
            scope=family.scope,
        )

    def for_client(self, client: AuthenticatedClient, scope: str) -> TokenResponse:
        """An access token for a service client itself (client-credentials grant): `sub` is
        the client_id, there is no session and no refresh token."""
        access_token = self.encoder.encode(
            {"sub": client.client_id, "client_id": client.client_id, "scope": scope},
            audiences=client.audiences,
        )
        return TokenResponse(
            access_token=access_token, expires_in=self.ttl, refresh_token=None, scope=scope
        )
