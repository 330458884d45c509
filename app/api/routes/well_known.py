"""Discovery: the public signing keys and the provider metadata."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import CodecDep, SettingsDep

router = APIRouter(prefix="/.well-known", tags=["discovery"])

# Keys and metadata change rarely; a short public cache spares the service without delaying a
# rotation beyond what the previous key's publication period already covers.
PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}


@router.get("/jwks.json")
async def jwks(codec: CodecDep) -> JSONResponse:
    """RFC 7517 JWK Set: the current signing key and retired keys whose tokens may still live."""
    return JSONResponse(codec.jwks(), headers=PUBLIC_CACHE)


@router.get("/openid-configuration")
async def openid_configuration(settings: SettingsDep, codec: CodecDep) -> JSONResponse:
    """Provider metadata (OpenID Connect Discovery / RFC 8414): only what is implemented."""
    base = settings.public_url.rstrip("/")
    metadata: dict[str, Any] = {
        "issuer": settings.issuer,
        "token_endpoint": f"{base}/auth/token",
        "revocation_endpoint": f"{base}/auth/revoke",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "id_token_signing_alg_values_supported": [],
        "access_token_signing_alg_values_supported": codec.algorithms,
        "scopes_supported": ["openid", "profile", "email"],
        "subject_types_supported": ["public"],
    }
    return JSONResponse(metadata, headers=PUBLIC_CACHE)
