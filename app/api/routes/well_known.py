"""Discovery: the public signing keys and the provider metadata."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import CodecDep, SettingsDep
from app.config import Settings
from app.services.admin.service_clients import SERVICE_SCOPES
from app.services.common.authorization import BUILTIN_PERMISSIONS
from app.services.tokens.scopes import BASIC_SCOPES

router = APIRouter(prefix="/.well-known", tags=["discovery"])


def public_cache(settings: Settings) -> dict[str, str]:
    """Keys and metadata change rarely: a public cache for AUTH_JWKS_MAX_AGE_SECONDS spares the
    service. A rotation publishes the new key longer than that before it signs
    (AUTH_KEY_PUBLISH_AHEAD_SECONDS), so a cached copy never lacks a key in use."""
    return {"Cache-Control": f"public, max-age={settings.jwks_max_age_seconds}"}


CLIENT_AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]
# What ID tokens and userinfo may say (OIDC Core 2, 5.1); `email`, `name` and the like only
# as the scopes allow.
CLAIMS_SUPPORTED = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "acr",
    "amr",
    "sid",
    "azp",
    "email",
    "email_verified",
    "name",
    "preferred_username",
]


@router.get("/jwks.json")
async def jwks(settings: SettingsDep, codec: CodecDep) -> JSONResponse:
    """RFC 7517 JWK Set: the active signing key, staged keys about to sign, and retired keys
    whose tokens may still live."""
    return JSONResponse(codec.jwks(), headers=public_cache(settings))


@router.get("/openid-configuration")
@router.get("/oauth-authorization-server")
async def authorization_server_metadata(settings: SettingsDep, codec: CodecDep) -> JSONResponse:
    """Authorization server metadata (RFC 8414), also served as the OpenID Provider's discovery
    document (OpenID Connect Discovery 1.0): only what is implemented. ID tokens are signed
    like access tokens (the same keys); the authorization endpoint answers `code` only, with
    S256 PKCE required and `iss` in every response (RFC 9207)."""
    base = settings.public_url.rstrip("/")
    metadata: dict[str, Any] = {
        "issuer": settings.issuer,
        "token_endpoint": f"{base}/auth/token",
        "revocation_endpoint": f"{base}/auth/revoke",
        "introspection_endpoint": f"{base}/auth/introspect",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "userinfo_endpoint": f"{base}/oauth/userinfo",
        "end_session_endpoint": f"{base}/logout",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
        ],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        # "none": the first-party password and refresh grants; clients use the other two.
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        # A client revokes its own tokens: public ones name themselves, service clients
        # authenticate.
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS[1:],
        "access_token_signing_alg_values_supported": codec.algorithms,
        "id_token_signing_alg_values_supported": codec.algorithms,
        "scopes_supported": sorted({*BASIC_SCOPES, *BUILTIN_PERMISSIONS, *SERVICE_SCOPES}),
        "subject_types_supported": ["public"],
        "claims_supported": CLAIMS_SUPPORTED,
        "claim_types_supported": ["normal"],
    }
    return JSONResponse(metadata, headers=public_cache(settings))
