"""Keys, codecs and a consumer verifier shared by the property tests (no database, no network).

Everything here is built once per session and never changed by a test, which is what lets
hypothesis reuse it across examples.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.security.access_tokens import AccessTokenCodec
from app.security.keys.ring import KeyRing
from app.security.keys.signing_key import SUPPORTED_ALGORITHMS, SigningKey
from authsvc_kit import JWKSCache, TokenVerifier
from tests.properties.tokens import AUDIENCE, ISSUER, JWKS_URL, TTL, Service


@pytest.fixture(scope="session")
def service() -> Service:
    """Per algorithm, a codec signing with that algorithm's key and verifying all of them,
    as the service does mid-rotation (a current key plus published previous ones)."""
    keys = {algorithm: SigningKey.generate(algorithm) for algorithm in SUPPORTED_ALGORITHMS}
    codecs = {
        algorithm: AccessTokenCodec(
            KeyRing(key, [other for other in keys.values() if other is not key]),
            issuer=ISSUER,
            audience=AUDIENCE,
            ttl_seconds=TTL,
        )
        for algorithm, key in keys.items()
    }
    return Service(keys=keys, codecs=codecs)


@pytest.fixture(scope="session")
async def verifier(service: Service) -> AsyncIterator[TokenVerifier]:
    """The consumer kit's verifier, its key set fetched once from the service's own JWKS
    document (served in-process: the same JSON `/.well-known/jwks.json` answers)."""

    def serve_jwks(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        return httpx.Response(200, json=service.codec.jwks())

    async with httpx.AsyncClient(transport=httpx.MockTransport(serve_jwks)) as http:
        jwks = JWKSCache(JWKS_URL, http_client=http)
        await jwks.refresh()
        assert set(jwks.keys) == {key.kid for key in service.keys.values()}
        yield TokenVerifier(ISSUER, AUDIENCE, jwks)
