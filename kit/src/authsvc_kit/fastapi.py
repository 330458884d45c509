"""A FastAPI dependency that authenticates callers by their authsvc access token.

```python
verifier = TokenVerifier(issuer, audience, JWKSCache(jwks_url))
User = Annotated[Claims, Depends(Authenticated(verifier))]
Admin = Annotated[Claims, Depends(Authenticated(verifier, scopes=["users:write"]))]
StepUp = Annotated[Claims, Depends(Authenticated(verifier, acr_values=["aal2"], max_age=300))]
```

Answers follow RFC 6750 section 3: 401 with `WWW-Authenticate: Bearer` when no bearer token
was sent, 401 with `error="invalid_token"` for a bad, expired or revoked one, 403 with
`error="insufficient_scope"` when the token lacks a required scope; RFC 9470: 401 with
`error="insufficient_user_authentication"` (and `acr_values`, `max_age`) when the user's sign-in
is not strong or recent enough; 503 when authsvc could not be asked (no keys yet, or
introspection failing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from authsvc_kit.claims import Claims
from authsvc_kit.errors import AuthsvcUnavailable, InsufficientUserAuthentication, InvalidToken
from authsvc_kit.introspection import Introspector
from authsvc_kit.step_up import AuthenticationRequirement
from authsvc_kit.verifier import TokenVerifier

logger = logging.getLogger(__name__)

# Also documents the bearer scheme in the consumer's OpenAPI schema. Tokens are read from the
# Authorization header only, never from the query string.
_bearer = HTTPBearer(auto_error=False, description="An access token issued by authsvc.")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class Authenticated:
    """A dependency returning the caller's verified `Claims`.

    `scopes`: every one must be in the token's `scope` claim (else 403). Step-up (RFC 9470,
    see `authsvc_kit.step_up`): `acr_values`, the token's `acr` must be one of them (a
    space-separated string or an iterable, e.g. `["aal2"]`); `max_age`, its `auth_time` must be
    at most that many seconds ago, give or take the verifier's `leeway` for clock skew; else
    401 `insufficient_user_authentication`, checked after the scopes (a step-up cannot add a
    scope). `introspector`: also ask authsvc whether the token is still active, for
    revocation-sensitive routes (a logout, a password change or a deactivation then takes
    effect at once, not at expiry); the scopes, `acr` and `auth_time` are then checked against
    authsvc's answer, which leaves out the scopes the subject has lost since the token was
    issued. The dependency returns the token's own claims either way.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        *,
        scopes: Iterable[str] = (),
        acr_values: str | Iterable[str] = (),
        max_age: int | None = None,
        introspector: Introspector | None = None,
        realm: str | None = None,
    ) -> None:
        self.verifier = verifier
        self.scopes = frozenset(scopes)
        self.requirement = AuthenticationRequirement.of(acr_values, max_age)
        self.introspector = introspector
        self.realm = realm
        self._challenge = f'Bearer realm="{realm}"' if realm else "Bearer"

    async def __call__(self, credentials: BearerCredentials) -> Claims:
        if credentials is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="Not authenticated",
                headers={"WWW-Authenticate": self._challenge},
            )
        token = credentials.credentials
        try:
            claims = await self.verifier.verify(token)
            granted = claims
            if self.introspector is not None:
                granted = await self.introspector.introspect(token)
        except InvalidToken as error:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="Invalid access token",
                headers={
                    "WWW-Authenticate": f'{self._challenge}, error="invalid_token", '
                    f'error_description="{error.reason}"'
                },
            ) from None
        except AuthsvcUnavailable as error:
            logger.warning("cannot check an access token: %s", error)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail="Authentication service unavailable",
            ) from None
        if self.scopes and not granted.has_scopes(self.scopes):
            required = " ".join(sorted(self.scopes))
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail="Insufficient scope",
                headers={
                    "WWW-Authenticate": f'{self._challenge}, error="insufficient_scope", '
                    f'scope="{required}"'
                },
            )
        try:
            self.requirement.check(granted, leeway=self.verifier.leeway)
        except InsufficientUserAuthentication as error:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail=error.description,
                headers={"WWW-Authenticate": error.challenge(self.realm)},
            ) from None
        return claims
