"""The kit verifies the live service's access tokens as strictly as the service does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.security.access_tokens import AccessTokenCodec
from authsvc_kit import AuthsvcKit, AuthsvcUnavailable, Claims, InvalidToken
from tests.kit.conftest import AUDIENCE, ManualClock, verifier_for
from tests.support.flows import register_and_sign_in
from tests.support.live_server import LiveService


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_json(data: dict[str, Any]) -> str:
    return b64(json.dumps(data).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def codec_like(live: LiveService, **changes: Any) -> AccessTokenCodec:
    """A codec over the service's own keys, with other issuer/audience/clock."""
    options: dict[str, Any] = {
        "issuer": live.url,
        "audience": AUDIENCE,
        "ttl_seconds": 900,
        **changes,
    }
    return AccessTokenCodec(live.codec.keys, **options)


async def reason(verifier: Any, token: str) -> str:
    with pytest.raises(InvalidToken) as refused:
        await verifier.verify(token)
    return refused.value.reason


async def test_a_signed_in_users_token_verifies_with_the_claims_the_service_issued(
    live_service: LiveService,
    service_client: httpx.AsyncClient,
    http: httpx.AsyncClient,
    kit_clock: ManualClock,
) -> None:
    tokens = await register_and_sign_in(service_client)
    me = (await service_client.get("/users/me", headers=_bearer(tokens))).json()
    verifier = verifier_for(live_service, http, kit_clock)

    claims = await verifier.verify(tokens["access_token"])

    assert isinstance(claims, Claims)
    assert claims.to_dict() == parts(tokens["access_token"])[1]
    assert claims.subject == me["id"]
    assert claims["iss"] == live_service.url
    assert claims["aud"] == AUDIENCE
    assert claims.client_id == "authsvc-web"
    assert verifier.verify_cached(tokens["access_token"]) == claims


async def test_discovery_configures_the_kit_from_the_provider_metadata(
    jwks_service: LiveService, http: httpx.AsyncClient
) -> None:
    kit = await AuthsvcKit.discover(jwks_service.url, AUDIENCE, http_client=http)

    assert kit.verifier.issuer == jwks_service.url
    assert kit.jwks.jwks_url == f"{jwks_service.url}/.well-known/jwks.json"
    assert (await kit.verify(jwks_service.mint())).subject


async def test_discovery_refuses_an_unexpected_issuer(
    jwks_service: LiveService, http: httpx.AsyncClient
) -> None:
    with pytest.raises(ValueError, match="issuer"):
        await AuthsvcKit.discover(
            jwks_service.url, AUDIENCE, http_client=http, expected_issuer="https://other"
        )


async def test_from_issuer_builds_the_standard_urls_without_io(
    jwks_service: LiveService, http: httpx.AsyncClient
) -> None:
    kit = AuthsvcKit.from_issuer(jwks_service.url, AUDIENCE, http_client=http)

    assert kit.introspector is None
    assert (await kit.verify(jwks_service.mint(scope="profile"))).scopes == {"profile"}


async def test_an_expired_token_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    an_hour_ago = codec_like(jwks_service, clock=lambda: time.time() - 3600)
    token = an_hour_ago.encode({"sub": "someone"})

    assert await reason(verifier_for(jwks_service, http, kit_clock), token) == "expired"


async def test_a_token_expired_within_the_leeway_is_accepted(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    just_expired = codec_like(jwks_service, clock=lambda: time.time() - 910)  # 10 s ago
    token = just_expired.encode({"sub": "someone"})

    assert (await verifier_for(jwks_service, http, kit_clock).verify(token)).subject == "someone"


async def test_a_token_with_a_forged_signature_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    header, claims = parts(jwks_service.mint())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers=header)

    assert await reason(verifier_for(jwks_service, http, kit_clock), forged) == "bad_signature"


async def test_a_token_with_changed_claims_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    header_segment, _, signature = jwks_service.mint().split(".")
    claims = parts(jwks_service.mint())[1] | {"sub": "someone-else", "roles": ["admin"]}
    tampered = f"{header_segment}.{b64_json(claims)}.{signature}"

    assert await reason(verifier_for(jwks_service, http, kit_clock), tampered) == "bad_signature"


async def test_alg_none_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    header, claims = parts(jwks_service.mint())
    unsigned = f"{b64_json({**header, 'alg': 'none'})}.{b64_json(claims)}."

    refused = await reason(verifier_for(jwks_service, http, kit_clock), unsigned)
    assert refused == "algorithm_not_allowed"


async def test_hs256_signed_with_the_public_key_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    header, claims = parts(jwks_service.mint())
    public_pem = jwks_service.codec.keys.current().signing_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64_json({**header, 'alg': 'HS256'})}.{b64_json(claims)}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(signature)}"

    refused = await reason(verifier_for(jwks_service, http, kit_clock), forged)
    assert refused == "algorithm_not_allowed"


@pytest.mark.parametrize("token_type", ["JWT", "id+jwt", None])
async def test_a_token_of_another_type_is_refused(
    jwks_service: LiveService,
    http: httpx.AsyncClient,
    kit_clock: ManualClock,
    token_type: str | None,
) -> None:
    claims = parts(jwks_service.mint())[1]
    token = jwks_service.sign(claims, typ=token_type)

    assert await reason(verifier_for(jwks_service, http, kit_clock), token) == "wrong_type"


@pytest.mark.parametrize("token_type", ["AT+JWT", "application/at+jwt"])
async def test_the_media_type_forms_of_at_jwt_are_accepted(
    jwks_service: LiveService,
    http: httpx.AsyncClient,
    kit_clock: ManualClock,
    token_type: str,
) -> None:
    claims = parts(jwks_service.mint())[1]
    token = jwks_service.sign(claims, typ=token_type)

    assert (await verifier_for(jwks_service, http, kit_clock).verify(token)).subject


async def test_a_token_of_another_issuer_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    token = codec_like(jwks_service, issuer="https://impostor.example").encode({"sub": "x"})

    assert await reason(verifier_for(jwks_service, http, kit_clock), token) == "wrong_issuer"


async def test_a_token_for_another_audience_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    token = codec_like(jwks_service, audience="billing").encode({"sub": "x"})

    assert await reason(verifier_for(jwks_service, http, kit_clock), token) == "wrong_audience"


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub"])
async def test_a_token_without_a_required_claim_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock, claim: str
) -> None:
    claims = parts(jwks_service.mint())[1]
    del claims[claim]
    token = jwks_service.sign(claims)

    assert await reason(verifier_for(jwks_service, http, kit_clock), token) == "missing_claim"


async def test_a_token_without_kid_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    token = jwks_service.sign(parts(jwks_service.mint())[1], kid=None)

    assert await reason(verifier_for(jwks_service, http, kit_clock), token) == "missing_kid"


async def test_a_token_naming_an_unpublished_kid_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    token = jwks_service.sign(parts(jwks_service.mint())[1], kid="retired")

    assert await reason(verifier_for(jwks_service, http, kit_clock), token) == "unknown_kid"


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9", "x" * 9000, "é.é.é", "W10.e30.", "bnVsbA.."],
)
async def test_malformed_tokens_are_refused_before_any_key_is_fetched(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock, token: str
) -> None:
    verifier = verifier_for(jwks_service, http, kit_clock)

    assert await reason(verifier, token) == "malformed"
    assert verifier.jwks.fetch_count == 0


async def test_an_overlong_token_is_refused_before_parsing(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    token = jwks_service.sign({**parts(jwks_service.mint())[1], "pad": "x" * 9000})
    verifier = verifier_for(jwks_service, http, kit_clock)

    assert await reason(verifier, token) == "malformed"
    assert verifier.jwks.fetch_count == 0


async def test_keys_outside_the_allowed_algorithms_are_not_used(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    verifier = verifier_for(jwks_service, http, kit_clock)
    verifier.algorithms = frozenset({"EdDSA"})  # the service signs with RS256

    assert await reason(verifier, jwks_service.mint()) == "algorithm_not_allowed"


async def test_verify_cached_does_no_io_and_knows_only_cached_keys(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    verifier = verifier_for(jwks_service, http, kit_clock)
    token = jwks_service.mint()

    with pytest.raises(InvalidToken, match="unknown_kid"):
        verifier.verify_cached(token)
    assert verifier.jwks.fetch_count == 0

    await verifier.jwks.refresh()
    assert verifier.verify_cached(token).subject


async def test_an_unreachable_service_before_any_key_was_fetched_is_unavailable_not_invalid(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    token = jwks_service.mint()
    verifier = verifier_for(jwks_service, http, kit_clock)
    await jwks_service.stop()

    with pytest.raises(AuthsvcUnavailable):
        await verifier.verify(token)


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}
