"""GitHub and Google as the service sees them, answered in-process through httpx.MockTransport.

Install `httpx.AsyncClient(transport=ProviderMocks(...).transport)` as the runtime's
`oauth_http` after the app has started (the `provider_mocks` fixture does). Each fake answers
its real API's URLs in that API's shapes:

- GitHub: `POST https://github.com/login/oauth/access_token` (form client credentials, PKCE;
  errors as 200 `{"error": ...}` the way GitHub does), `GET https://api.github.com/user` and
  `GET https://api.github.com/user/emails`.
- Google: `POST https://oauth2.googleapis.com/token` (an ID token signed with a test key),
  `GET https://www.googleapis.com/oauth2/v3/certs`, and
  `GET https://openidconnect.googleapis.com/v1/userinfo`.

Both use `AuthorizationServer` for codes and PKCE, so `approve()` works as on the stand-in.
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx

from tests.oauth.authorization_server import (
    AuthorizationServer,
    Client,
    Identity,
    TokenError,
    TokenRequest,
)

GITHUB_AUTHORIZE_URL = "https://github.com/login/oauth/authorize"
GITHUB_TOKEN_URL = "https://github.com/login/oauth/access_token"
GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_USERINFO_URL = "https://openidconnect.googleapis.com/v1/userinfo"


def github_email(email: str, *, primary: bool = False, verified: bool = True) -> dict[str, Any]:
    """One entry of GitHub's `GET /user/emails`."""
    return {"email": email, "primary": primary, "verified": verified, "visibility": None}


@dataclass(frozen=True, slots=True)
class GitHubUser:
    """A GitHub account: `/user` plus the addresses `/user/emails` lists."""

    id: int
    login: str
    name: str | None = None
    public_email: str | None = None
    emails: list[dict[str, Any]] = field(default_factory=list)

    def user(self) -> dict[str, Any]:
        return {
            "login": self.login,
            "id": self.id,
            "node_id": f"U_{self.id}",
            "type": "User",
            "name": self.name,
            "email": self.public_email,
        }


def _form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


class GitHubFake:
    """GitHub's OAuth app endpoints and the two REST calls a sign-in needs."""

    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.server: AuthorizationServer[GitHubUser] = AuthorizationServer(
            issuer="https://github.com",
            authorization_endpoint=GITHUB_AUTHORIZE_URL,
            clients=[Client(client_id, client_secret)],
            requires_openid=False,
        )

    @property
    def token_requests(self) -> list[TokenRequest]:
        return self.server.token_requests

    def approve(self, authorization_url: str, identity: GitHubUser) -> tuple[str, str]:
        return self.server.approve(authorization_url, identity)

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = f"{request.url.scheme}://{request.url.host}{request.url.path}"
        if request.method == "POST" and url == GITHUB_TOKEN_URL:
            return self._token(request)
        if request.method == "GET" and url in (
            "https://api.github.com/user",
            "https://api.github.com/user/emails",
        ):
            grant = self.server.grant_for(request.headers.get("authorization"))
            if grant is None:
                return httpx.Response(
                    401,
                    json={
                        "message": "Bad credentials",
                        "documentation_url": "https://docs.github.com/rest",
                    },
                )
            if url.endswith("/emails"):
                return httpx.Response(200, json=grant.identity.emails)
            return httpx.Response(200, json=grant.identity.user())
        return httpx.Response(404, json={"message": "Not Found"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        try:
            grant, access_token = self.server.redeem(
                _form(request), request.headers.get("authorization")
            )
        except TokenError as exc:
            # GitHub answers token errors with 200 and an error member.
            body: dict[str, str] = {
                "error": "incorrect_client_credentials"
                if exc.error == "invalid_client"
                else "bad_verification_code",
                "error_description": exc.description,
            }
        else:
            body = {"access_token": access_token, "token_type": "bearer", "scope": grant.scope}
        if "application/json" in request.headers.get("accept", ""):
            return httpx.Response(200, json=body)
        return httpx.Response(
            200,
            content=urlencode(body).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )


class GoogleFake:
    """Google's OpenID Connect endpoints, with ID tokens signed by a test key."""

    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.server: AuthorizationServer[Identity] = AuthorizationServer(
            issuer=GOOGLE_ISSUER,
            authorization_endpoint=GOOGLE_AUTHORIZE_URL,
            clients=[Client(client_id, client_secret)],
            key_label="google",
            kid="google-key-1",
        )

    @property
    def token_requests(self) -> list[TokenRequest]:
        return self.server.token_requests

    def approve(self, authorization_url: str, identity: Identity) -> tuple[str, str]:
        return self.server.approve(authorization_url, identity)

    def alter_next_id_token(self, **claims: Any) -> None:
        self.server.alter_next_id_token(**claims)

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = f"{request.url.scheme}://{request.url.host}{request.url.path}"
        if request.method == "POST" and url == GOOGLE_TOKEN_URL:
            try:
                grant, access_token = self.server.redeem(
                    _form(request), request.headers.get("authorization")
                )
            except TokenError as exc:
                return httpx.Response(exc.status, json=exc.body())
            return httpx.Response(
                200,
                json={
                    "access_token": access_token,
                    "expires_in": 3599,
                    "scope": grant.scope,
                    "token_type": "Bearer",
                    "id_token": self.server.id_token(grant),
                },
            )
        if request.method == "GET" and url == GOOGLE_JWKS_URL:
            return httpx.Response(200, json=self.server.jwks())
        if url == GOOGLE_USERINFO_URL:
            bearer_of = self.server.grant_for(request.headers.get("authorization"))
            if bearer_of is None:
                return httpx.Response(401, json={"error": "invalid_token"})
            return httpx.Response(200, json=bearer_of.identity.claims())
        return httpx.Response(404, text=json.dumps({"error": "not_found"}))


GITHUB_HOSTS = frozenset({"github.com", "api.github.com"})
GOOGLE_HOSTS = frozenset(
    {
        "accounts.google.com",
        "oauth2.googleapis.com",
        "www.googleapis.com",
        "openidconnect.googleapis.com",
    }
)


class ProviderMocks:
    """Routes the service's outbound requests to the fakes by host; counts them by URL."""

    def __init__(self, github: GitHubFake, google: GoogleFake) -> None:
        self.github = github
        self.google = google
        self.requests: collections.Counter[str] = collections.Counter()
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests[f"{request.url.scheme}://{request.url.host}{request.url.path}"] += 1
        if request.url.host in GITHUB_HOSTS:
            return self.github.handle(request)
        if request.url.host in GOOGLE_HOSTS:
            return self.google.handle(request)
        raise AssertionError(f"unexpected outbound request: {request.method} {request.url}")
