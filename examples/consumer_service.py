"""A service that trusts authsvc's access tokens, protected by `authsvc_kit`.

Run authsvc (say on port 8000), then this service next to it:

    AUTHSVC_URL=http://localhost:8000 .venv/bin/uvicorn examples.consumer_service:app --port 8001

    TOKEN=$(curl -s -d grant_type=password -d username=ada@example.com \\
        -d 'password=correct horse battery staple' -d 'scope=users:read' \\
        http://localhost:8000/auth/token | jq -r .access_token)
    curl -H "Authorization: Bearer $TOKEN" http://localhost:8001/me

Environment:

- `AUTHSVC_URL`: where authsvc answers (default `http://localhost:8000`).
- `AUTHSVC_ISSUER`: its `AUTH_ISSUER`, if not the same as `AUTHSVC_URL`.
- `AUTHSVC_AUDIENCE`: its `AUTH_JWT_AUDIENCE` (default `authsvc`).
- `AUTHSVC_CLIENT_ID`, `AUTHSVC_CLIENT_SECRET`: a service client with the `introspect` scope
  (`authsvc create-client --scopes introspect`, or `POST /admin/clients`), for the
  revocation-sensitive route. Without them that route answers 503.

Routes: `GET /public` (anyone), `GET /me` (any valid token: its claims), `GET /reports`
(needs the `users:read` scope), `POST /payments` (also asks authsvc whether the token is still
active, so a logout or a deactivation stops it at once), `POST /transfers` (step-up, RFC 9470:
needs a sign-in with a second factor, `acr` aal2, within the last 5 minutes; otherwise 401
`insufficient_user_authentication` with `acr_values="aal2", max_age=300`).
"""

# No `from __future__ import annotations` here: FastAPI must resolve the dependency aliases
# defined inside `create_app` at runtime, and it cannot see a function's local names.
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException

from authsvc_kit import AuthsvcKit, Claims

REPORTS_SCOPE = "users:read"
# Step-up for transfers: a second factor, proved at most this many seconds ago.
TRANSFERS_MAX_AGE = 300


def kit_from_environment(environ: Mapping[str, str] = os.environ) -> AuthsvcKit:
    """The kit for the authsvc the `AUTHSVC_*` variables describe (no I/O)."""
    service_url = environ.get("AUTHSVC_URL", "http://localhost:8000")
    return AuthsvcKit.from_issuer(
        environ.get("AUTHSVC_ISSUER", service_url),
        audience=environ.get("AUTHSVC_AUDIENCE", "authsvc"),
        service_url=service_url,
        client_id=environ.get("AUTHSVC_CLIENT_ID"),
        client_secret=environ.get("AUTHSVC_CLIENT_SECRET"),
    )


def _revocation_checked(kit: AuthsvcKit) -> Callable[..., Awaitable[Claims]]:
    """Verify and introspect; without client credentials, refuse (fail closed)."""
    if kit.introspector is not None:
        return kit.authenticated(check_revocation=True)

    async def unavailable() -> Claims:
        raise HTTPException(503, detail="Introspection is not configured")

    return unavailable


def create_app(kit: AuthsvcKit | None = None) -> FastAPI:
    """The example service, trusting the tokens `kit` verifies (default: from the
    environment). The app closes the kit on shutdown."""
    kit = kit or kit_from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await kit.aclose()

    User = Annotated[Claims, Depends(kit.authenticated())]
    Reader = Annotated[Claims, Depends(kit.authenticated([REPORTS_SCOPE]))]
    CurrentUser = Annotated[Claims, Depends(_revocation_checked(kit))]
    SteppedUp = Annotated[Claims, Depends(kit.require_acr("aal2", max_age=TRANSFERS_MAX_AGE))]

    app = FastAPI(title="consumer service (authsvc_kit example)", lifespan=lifespan)
    app.state.kit = kit

    @app.get("/public")
    async def public() -> dict[str, str]:
        """No token needed."""
        return {"hello": "world"}

    @app.get("/me")
    async def me(claims: User) -> dict[str, Any]:
        """The caller's verified claims (checked locally against authsvc's JWKS)."""
        return claims.to_dict()

    @app.get("/reports")
    async def reports(claims: Reader) -> dict[str, Any]:
        """Needs the `users:read` scope in the token."""
        return {"reports": [], "for": claims.subject}

    @app.post("/payments")
    async def payments(claims: CurrentUser) -> dict[str, Any]:
        """Revocation-sensitive: authsvc confirms the token is still active."""
        return {"paid_by": claims.subject}

    @app.post("/transfers")
    async def transfers(claims: SteppedUp) -> dict[str, Any]:
        """Step-up: a sign-in with a second factor (`acr` aal2) in the last 5 minutes."""
        return {"sent_by": claims.subject, "acr": claims.acr, "amr": list(claims.amr)}

    return app


app = create_app()
