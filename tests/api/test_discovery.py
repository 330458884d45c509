"""JWKS and provider metadata."""

from __future__ import annotations

import httpx
import pytest

from app.config import Settings

pytestmark = pytest.mark.usefixtures("app")


async def test_jwks_publishes_public_keys_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")

    assert response.status_code == 200
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert {"kty", "kid", "alg", "use"} <= key.keys()
        assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()


async def test_openid_configuration_names_this_issuer_and_its_endpoints(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    metadata = (await client.get("/.well-known/openid-configuration")).json()

    assert metadata["issuer"] == settings.issuer
    assert metadata["token_endpoint"].endswith("/auth/token")
    assert metadata["jwks_uri"].endswith("/.well-known/jwks.json")
    assert metadata["revocation_endpoint"].endswith("/auth/revoke")
    assert {"password", "refresh_token"} <= set(metadata["grant_types_supported"])
    assert metadata["access_token_signing_alg_values_supported"] == ["RS256"]


async def test_swagger_ui_authorize_points_at_the_token_endpoint(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()

    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "/auth/token"
