"""authsvc_kit: how other services trust authsvc's access tokens.

Verify tokens locally against authsvc's published keys (fast, no call per request), and ask
authsvc through introspection where a logout or deactivation must take effect at once::

    from typing import Annotated

    from fastapi import Depends, FastAPI

    from authsvc_kit import AuthsvcKit, Claims

    kit = AuthsvcKit.from_issuer(
        "http://localhost:8000",  # authsvc's AUTH_ISSUER
        audience="authsvc",  # its AUTH_JWT_AUDIENCE
        service_url="http://authsvc:8000",  # where to reach it, if not at the issuer URL
        client_id="...",  # optional: a service client with the `introspect` scope
        client_secret="...",
    )
    app = FastAPI()

    User = Annotated[Claims, Depends(kit.authenticated())]
    Reader = Annotated[Claims, Depends(kit.authenticated(["users:read"]))]
    Fresh = Annotated[Claims, Depends(kit.authenticated(check_revocation=True))]
    # Step-up (RFC 9470): a second factor, and a sign-in within the last 5 minutes.
    Strong = Annotated[Claims, Depends(kit.require_acr("aal2", max_age=300))]


    @app.get("/me")
    async def me(claims: User) -> dict[str, object]:
        return {"sub": claims.subject, "scopes": sorted(claims.scopes)}

Without FastAPI::

    claims = await kit.verify(token)  # InvalidToken(reason) if it is not valid
    claims = kit.verifier.verify_cached(token)  # sync, from the cached keys only
    check_authentication(claims, acr_values="aal2", max_age=300)  # InsufficientUserAuthentication

The distribution `authsvc-kit` depends on PyJWT (with cryptography) and httpx;
`authsvc_kit.fastapi` (and `AuthsvcKit.authenticated`) also on FastAPI, its `fastapi` extra.
It never imports the service. `authsvc_kit.rules` holds the checks every verifier of authsvc's
tokens applies, the service's own included.
"""

from authsvc_kit.claims import Claims
from authsvc_kit.errors import AuthsvcUnavailable, InsufficientUserAuthentication, InvalidToken
from authsvc_kit.introspection import Introspector
from authsvc_kit.jwks import JWKSCache, VerificationKey
from authsvc_kit.kit import AuthsvcKit, KitOptions
from authsvc_kit.step_up import check_authentication
from authsvc_kit.verifier import DEFAULT_ALGORITHMS, TokenVerifier

__all__ = [
    "DEFAULT_ALGORITHMS",
    "AuthsvcKit",
    "AuthsvcUnavailable",
    "Claims",
    "InsufficientUserAuthentication",
    "Introspector",
    "InvalidToken",
    "JWKSCache",
    "KitOptions",
    "TokenVerifier",
    "VerificationKey",
    "check_authentication",
]
