"""Access tokens, ID tokens and the OAuth2 token response for a session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.config import Settings
from app.security.access_tokens import AccessTokenCodec
from app.security.id_tokens import IdTokenSigner
from app.services.tokens.assurance import methods_of
from app.services.tokens.client_authentication import AuthenticatedClient
from app.services.tokens.identity_claims import identity_claims
from app.services.tokens.scopes import OPENID
from app.services.tokens.sign_in_sessions import IssuedSession


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """RFC 6749 section 5.1 successful token response; `id_token` (OIDC Core 3.1.3.3) when
    the scope has `openid`."""

    access_token: str
    expires_in: int
    refresh_token: str | None
    scope: str
    token_type: str = "bearer"
    id_token: str | None = None


class TokenIssuer:
    def __init__(
        self,
        codec: AccessTokenCodec,
        settings: Settings,
        *,
        id_tokens: IdTokenSigner | None = None,
    ) -> None:
        """`id_tokens` defaults to a signer sharing `codec`'s keys, issuer and lifetime."""
        self.encoder = codec
        self.id_tokens = id_tokens or IdTokenSigner.alongside(codec)
        self.ttl = settings.access_token_ttl_seconds
        # The `aud` of an ID token whose session names no client. Every sign-in records its
        # client (a password grant naming none records AUTH_FIRST_PARTY_CLIENT_ID, and so does
        # a provider sign-in), but the column allows none: such a session is that client's.
        self.default_client_id = settings.first_party_client_id

    def for_session(self, issued: IssuedSession, *, nonce: str | None = None) -> TokenResponse:
        """An RFC 9068 access token for the session's user, plus the session's refresh token,
        and an ID token for the session's client when the session's scope has `openid`.

        `nonce` (from the authentication request) goes into the ID token unchanged; without
        one the ID token has none.
        """
        user, family = issued.user, issued.session
        authentication: dict[str, Any] = {
            "auth_time": int(family.authenticated_at.timestamp()),
            "acr": family.acr,
            # Sessions begun before second factors existed recorded no methods.
            **({"amr": methods_of(family.amr)} if family.amr else {}),
        }
        access_token = self.encoder.encode(
            {
                "sub": str(user.id),
                "client_id": family.client_id,
                "scope": family.scope,
                "roles": sorted(role.name for role in user.roles),
                "sid": str(family.id),
                "ver": user.token_version,
                **authentication,
            }
        )
        id_token = None
        if OPENID in family.scope.split():
            id_token = self._id_token(issued, authentication, access_token, nonce)
        return TokenResponse(
            access_token=access_token,
            expires_in=self.ttl,
            refresh_token=issued.refresh_token,
            scope=family.scope,
            id_token=id_token,
        )

    def _id_token(
        self,
        issued: IssuedSession,
        authentication: dict[str, Any],
        access_token: str,
        nonce: str | None,
    ) -> str:
        """The session's ID token (OIDC Core 2), for its client, with the claims of `profile`
        and `email` when the session's scope has them."""
        user, family = issued.user, issued.session
        client_id = family.client_id or self.default_client_id
        claims: dict[str, Any] = {
            "sub": str(user.id),
            "azp": client_id,
            **authentication,
            "sid": str(family.id),
            **({"nonce": nonce} if nonce is not None else {}),
            **identity_claims(family.scope.split(), user),
        }
        return self.id_tokens.sign(claims, audience=client_id, access_token=access_token)

    def for_client(self, client: AuthenticatedClient, scope: str) -> TokenResponse:
        """An access token for a service client itself (client-credentials grant): `sub` is
        the client_id, there is no session, no refresh token and no ID token (there is no
        user: `openid` means nothing here)."""
        access_token = self.encoder.encode(
            {"sub": client.client_id, "client_id": client.client_id, "scope": scope},
            audiences=client.audiences,
        )
        return TokenResponse(
            access_token=access_token, expires_in=self.ttl, refresh_token=None, scope=scope
        )
