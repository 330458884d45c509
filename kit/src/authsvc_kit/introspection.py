"""Asking authsvc whether a token is still valid (RFC 7662 token introspection).

Local verification cannot see a logout, a revoked session, a password change or a
deactivated user before the token expires; introspection can, at the cost of one request to
authsvc per check. Use it on the routes where that matters.
"""

from __future__ import annotations

import json
from typing import Any, Final

import httpx

from authsvc_kit.claims import Claims
from authsvc_kit.errors import AuthsvcUnavailable, InvalidToken

DEFAULT_TIMEOUT: Final = 5.0
ACCESS_TOKEN_HINT: Final = "access_token"
_REFRESH_TOKEN_TYPE: Final = "refresh_token"
MAX_RESPONSE_BYTES: Final = 64 * 1024


class Introspector:
    """Calls authsvc's introspection endpoint as a service client (client_secret_basic).

    The client needs the `introspect` scope (`POST /admin/clients` with
    `{"name": ..., "scopes": ["introspect"]}`, or `authsvc create-client`).
    `http_client` is used as given (and not closed by `aclose`); without one, the
    introspector makes its own.
    """

    def __init__(
        self,
        introspection_url: str,
        client_id: str,
        client_secret: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.introspection_url = introspection_url
        self.client_id = client_id
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._owns_client = http_client is None
        self._http = http_client or httpx.AsyncClient()
        self._timeout = httpx.Timeout(timeout)

    async def introspect(
        self, token: str, token_type_hint: str | None = ACCESS_TOKEN_HINT
    ) -> Claims:
        """authsvc's answer for an active token (`active`, `sub`, `client_id`, `scope`, `exp`,
        `iat`, `iss`, `aud`, `token_type`, `username`, `email`, `roles`, and for a user's
        token how they signed in: `auth_time`, `acr`, `amr`).

        `InvalidToken("inactive")` if authsvc says the token is not active (expired, revoked,
        logged out, user deactivated, not its token), `InvalidToken("wrong_type")` for an
        active refresh token; `AuthsvcUnavailable` if authsvc did not answer or refused this
        client (bad credentials, no `introspect` scope).
        """
        form = {"token": token}
        if token_type_hint:
            form["token_type_hint"] = token_type_hint
        try:
            response = await self._http.post(
                self.introspection_url,
                data=form,
                auth=self._auth,
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            )
        except httpx.HTTPError as error:
            raise AuthsvcUnavailable(
                f"introspection request failed: {type(error).__name__}"
            ) from error
        if response.status_code != 200:
            raise AuthsvcUnavailable(_describe_failure(response))
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise AuthsvcUnavailable("introspection answer too large")
        try:
            body: Any = json.loads(response.content)
        except ValueError as error:
            raise AuthsvcUnavailable("introspection answer is not JSON") from error
        if not isinstance(body, dict) or not isinstance(body.get("active"), bool):
            raise AuthsvcUnavailable("introspection answer has no boolean `active`")
        if body["active"] is not True:
            raise InvalidToken("inactive")
        if body.get("token_type") == _REFRESH_TOKEN_TYPE:
            # authsvc introspects refresh tokens too; presented as a bearer token, one is not
            # an access token, whatever the hint said.
            raise InvalidToken("wrong_type")
        return Claims(body)

    async def aclose(self) -> None:
        """Close the HTTP client, if the introspector made it."""
        if self._owns_client:
            await self._http.aclose()


def _describe_failure(response: httpx.Response) -> str:
    error = None
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            error = body["error"]
    except ValueError:
        pass
    if error:
        return f"introspection answered HTTP {response.status_code} ({error})"
    return f"introspection answered HTTP {response.status_code}"
