"""JWKS and provider metadata."""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

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


async def test_jwks_and_metadata_are_cached_for_the_configured_max_age(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    jwks = await client.get("/.well-known/jwks.json")
    metadata = await client.get("/.well-known/openid-configuration")

    expected = f"public, max-age={settings.jwks_max_age_seconds}"
    assert jwks.headers["cache-control"] == metadata.headers["cache-control"] == expected


async def test_openid_configuration_names_this_issuer_and_its_endpoints(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    metadata = (await client.get("/.well-known/openid-configuration")).json()

    assert metadata["issuer"] == settings.issuer
    assert metadata["token_endpoint"].endswith("/auth/token")
    assert metadata["jwks_uri"].endswith("/.well-known/jwks.json")
    assert metadata["revocation_endpoint"].endswith("/auth/revoke")
    assert metadata["introspection_endpoint"].endswith("/auth/introspect")
    assert set(metadata["grant_types_supported"]) == {
        "authorization_code",
        "password",
        "refresh_token",
        "client_credentials",
    }
    assert metadata["access_token_signing_alg_values_supported"] == ["RS256"]
    assert set(metadata["introspection_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
    }
    # Revocation takes public clients by name and service clients by their credentials.
    assert set(metadata["revocation_endpoint_auth_methods_supported"]) == {
        "none",
        "client_secret_basic",
        "client_secret_post",
    }
    assert {"users:read", "introspect"} <= set(metadata["scopes_supported"])


async def test_every_advertised_endpoint_and_grant_is_served(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    metadata = (await client.get("/.well-known/openid-configuration")).json()

    def path(url: str) -> str:
        assert url.startswith(settings.public_url.rstrip("/"))
        return url.removeprefix(settings.public_url.rstrip("/"))

    assert (await client.get(path(metadata["jwks_uri"]))).status_code == 200
    # Without credentials each OAuth endpoint answers with its own RFC 6749 error, not 404/405.
    revoke = await client.post(path(metadata["revocation_endpoint"]), data={})
    assert revoke.json()["error"] == "invalid_request"
    introspect = await client.post(path(metadata["introspection_endpoint"]), data={"token": "x"})
    assert introspect.json()["error"] == "invalid_client"
    for method in ("GET", "POST"):  # userinfo asks for a bearer token
        userinfo = await client.request(method, path(metadata["userinfo_endpoint"]))
        assert userinfo.headers["www-authenticate"] == "Bearer", method
    # RP-initiated logout asks the user to confirm.
    assert (await client.get(path(metadata["end_session_endpoint"]))).status_code == 200
    # Without a client the authorization endpoint shows its error page, never a redirect.
    authorize = await client.get(path(metadata["authorization_endpoint"]))
    assert authorize.status_code == 400
    assert "location" not in authorize.headers
    for grant in metadata["grant_types_supported"]:
        response = await client.post(path(metadata["token_endpoint"]), data={"grant_type": grant})
        assert response.json()["error"] != "unsupported_grant_type", grant


async def test_swagger_ui_authorize_points_at_the_token_endpoint(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()

    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "/auth/token"


async def test_rfc8414_metadata_is_the_same_document_as_openid_configuration(
    client: httpx.AsyncClient,
) -> None:
    oauth = await client.get("/.well-known/oauth-authorization-server")
    openid = await client.get("/.well-known/openid-configuration")

    assert oauth.status_code == 200
    assert oauth.json() == openid.json()
    assert oauth.headers["cache-control"] == openid.headers["cache-control"]


async def test_discovery_advertises_id_tokens_and_userinfo(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()

    assert {"openid", "profile", "email", "offline_access"} <= set(metadata["scopes_supported"])
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert metadata["userinfo_endpoint"] == f"{settings.public_url.rstrip('/')}/oauth/userinfo"
    assert metadata["claim_types_supported"] == ["normal"]
    assert set(metadata["claims_supported"]) == {
        *("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash"),
        *("acr", "amr", "sid", "azp", "email", "email_verified", "name", "preferred_username"),
    }


async def test_discovery_advertises_the_code_flow_with_pkce_and_the_issuer_in_responses(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    metadata = (await client.get("/.well-known/openid-configuration")).json()

    assert metadata["authorization_endpoint"] == f"{settings.public_url}/oauth/authorize"
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["response_modes_supported"] == ["query"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert "authorization_code" in metadata["grant_types_supported"]
    assert metadata["end_session_endpoint"] == f"{settings.public_url}/logout"


class TestServedOverHttps:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"issuer": "https://auth.example.com", "public_url": "https://auth.example.com"}

    async def test_metadata_passes_authlibs_rfc8414_checks(self, client: httpx.AsyncClient) -> None:
        document: dict[str, Any] = (
            await client.get("/.well-known/oauth-authorization-server")
        ).json()
        metadata = AuthorizationServerMetadata(document)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metadata.validate()
        assert metadata["issuer"] == "https://auth.example.com"

    async def test_metadata_passes_authlibs_openid_provider_checks(
        self, client: httpx.AsyncClient
    ) -> None:
        document: dict[str, Any] = (await client.get("/.well-known/openid-configuration")).json()

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            OpenIDProviderMetadata(document).validate()
