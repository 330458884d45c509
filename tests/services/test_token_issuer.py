"""TokenIssuer.for_session as the authorization-code grant calls it: the `nonce` of the
authentication request goes into the ID token unchanged, and a session that names no client
is the first-party client's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from app.config import Settings
from app.models import User, UserSession
from app.security.access_tokens import AccessTokenCodec
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import SigningKey
from app.services.tokens.sign_in_sessions import IssuedSession
from app.services.tokens.token_issuer import TokenIssuer

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]
SIGNED_IN_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    codec = AccessTokenCodec(
        KeyRing(SigningKey.generate("ES256")),
        issuer=SETTINGS.issuer,
        audience=SETTINGS.jwt_audience,
        ttl_seconds=SETTINGS.access_token_ttl_seconds,
    )
    return TokenIssuer(codec, SETTINGS)


def issued(*, scope: str, client_id: str | None) -> IssuedSession:
    """A session as a sign-in leaves it (not stored: the issuer reads, never writes)."""
    user = User(id=uuid.uuid4(), email="ada@example.com", is_verified=True, token_version=0)
    session = UserSession(
        id=uuid.uuid4(),
        user_id=user.id,
        client_id=client_id,
        scope=scope,
        authenticated_at=SIGNED_IN_AT,
        amr="pwd",
        acr="aal1",
    )
    return IssuedSession(session=session, user=user, refresh_token="a-refresh-token")


def id_token_claims(token: str | None) -> dict[str, Any]:
    assert token is not None
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def test_the_nonce_goes_into_the_id_token_unchanged(issuer: TokenIssuer) -> None:
    response = issuer.for_session(issued(scope="openid", client_id="shop"), nonce="n-0S6_WzA2Mj")

    claims = id_token_claims(response.id_token)
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["aud"] == claims["azp"] == "shop"
    assert claims["auth_time"] == int(SIGNED_IN_AT.timestamp())


def test_a_session_naming_no_client_is_the_first_party_clients(issuer: TokenIssuer) -> None:
    response = issuer.for_session(issued(scope="openid email", client_id=None))

    claims = id_token_claims(response.id_token)
    assert claims["aud"] == SETTINGS.first_party_client_id
    assert "nonce" not in claims
    assert (claims["email"], claims["email_verified"]) == ("ada@example.com", True)


def test_no_id_token_without_openid_even_with_a_nonce(issuer: TokenIssuer) -> None:
    response = issuer.for_session(issued(scope="email", client_id="shop"), nonce="n-1")

    assert response.id_token is None
