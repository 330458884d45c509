"""Helpers for the OpenID Provider's flows, done the way a browser and a client do them: the
authorization endpoint, the hosted sign-in and consent forms (with their CSRF tokens), and the
code's redemption at the token endpoint."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from app.security.pkce import s256_challenge
from tests.support.admins import register_any_client
from tests.support.flows import PASSWORD

REDIRECT_URI = "https://app.example/callback"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"')


@dataclass
class RelyingParty:
    """A registered client and one authorization request's secrets (PKCE verifier, state,
    nonce), as a relying party keeps them."""

    client_id: str
    client_secret: str | None = None
    redirect_uri: str = REDIRECT_URI
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    def authorization_parameters(self, **extra: str | None) -> dict[str, str]:
        """A valid authorization request (scope `openid profile email`); `extra` overrides
        or adds parameters (None removes one)."""
        parameters: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile email",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": s256_challenge(self.verifier),
            "code_challenge_method": "S256",
            **extra,
        }
        return {name: value for name, value in parameters.items() if value is not None}

    def credentials(self) -> tuple[dict[str, str], httpx.BasicAuth | None]:
        """The token request's client authentication: form `client_id` for a public client,
        HTTP Basic for a confidential one."""
        if self.client_secret is None:
            return {"client_id": self.client_id}, None
        return {}, httpx.BasicAuth(self.client_id, self.client_secret)


async def register_relying_party(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    *,
    public: bool = False,
    first_party: bool = False,
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
    **registration: object,
) -> RelyingParty:
    """Register a client for the authorization-code flow through the admin API."""
    body = await register_any_client(
        client,
        admin,
        name="Photo Printer",
        grant_types=list(grant_types),
        redirect_uris=list(redirect_uris),
        is_first_party=first_party,
        **({"token_endpoint_auth_method": "none"} if public else {}),
        **registration,
    )
    return RelyingParty(
        client_id=str(body["client_id"]),
        client_secret=None if public else str(body["client_secret"]),
        redirect_uri=redirect_uris[0],
    )


def csrf_token(page: httpx.Response) -> str:
    found = _CSRF_FIELD.search(page.text)
    assert found, page.text
    return found.group(1)


def hidden_fields(page: httpx.Response) -> dict[str, str]:
    """The hidden fields of a page's (first) form, unescaped enough for these values."""
    return {
        name: value.replace("&amp;", "&").replace("&#34;", '"').replace("&#39;", "'")
        for name, value in _HIDDEN.findall(page.text)
    }


def location(response: httpx.Response) -> str:
    assert response.status_code in (302, 303), (response.status_code, response.text)
    return response.headers["location"]


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


async def authorize(
    client: httpx.AsyncClient, rp: RelyingParty, **extra: str | None
) -> httpx.Response:
    return await client.get("/oauth/authorize", params=rp.authorization_parameters(**extra))


async def sign_in_on_page(
    client: httpx.AsyncClient,
    sign_in_url: str = "/login",
    username: str = "ada@example.com",
    password: str = PASSWORD,
) -> httpx.Response:
    """Open the sign-in page at `sign_in_url` and submit it; the form POST's response."""
    page = await client.get(sign_in_url)
    assert page.status_code == 200, page.text
    fields = hidden_fields(page)
    return await client.post("/login", data={**fields, "username": username, "password": password})


async def code_for(
    client: httpx.AsyncClient,
    rp: RelyingParty,
    *,
    username: str = "ada@example.com",
    password: str = PASSWORD,
    **extra: str | None,
) -> str:
    """Run the browser's part for a signed-in-or-not browser: authorize, sign in if asked
    (as `username`), approve consent if asked; the code the client receives."""
    response = await authorize(client, rp, **extra)
    if response.status_code == 302 and location(response).startswith("/login"):
        signed_in = await sign_in_on_page(client, location(response), username, password)
        response = await client.get(location(signed_in))
    if response.status_code == 200 and 'name="decision"' in response.text:
        response = await approve(client, response)
    target = location(response)
    assert target.startswith(rp.redirect_uri), target
    answer = query_of(target)
    assert answer.get("state") == rp.state, answer
    return answer["code"]


async def approve(
    client: httpx.AsyncClient, consent_page: httpx.Response, decision: str = "approve"
) -> httpx.Response:
    fields = hidden_fields(consent_page)
    return await client.post("/consent", data={**fields, "decision": decision})


async def redeem(
    client: httpx.AsyncClient, rp: RelyingParty, code: str, **overrides: str | None
) -> httpx.Response:
    """The token request for `code` (`overrides` change or drop form fields)."""
    form, auth = rp.credentials()
    data: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": rp.redirect_uri,
        "code_verifier": rp.verifier,
        **form,
        **overrides,
    }
    return await client.post(
        "/auth/token",
        data={name: value for name, value in data.items() if value is not None},
        auth=auth or httpx.USE_CLIENT_DEFAULT,
    )


async def tokens_for(
    client: httpx.AsyncClient, rp: RelyingParty, **extra: str | None
) -> dict[str, Any]:
    response = await redeem(client, rp, await code_for(client, rp, **extra))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
