"""The external identity providers: GitHub, Google and any OpenID Connect provider.

Each provider builds the authorization URL and turns an authorization code into an
`ExternalIdentity`. Every outbound call goes through the app's httpx client (timeouts from
settings); a provider that cannot be reached is `ProviderUnavailable` (503), one that answers
something unusable is `ProviderError` (502): never a hang, never a 500.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import jwt

from app.config import OAuthProvider, Settings
from app.errors import BadGateway, InvalidInput, ServiceUnavailable

# ID tokens are short-lived; a little leeway absorbs clock skew with the provider.
ID_TOKEN_LEEWAY_SECONDS = 60
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA")
# A provider rotating keys is seen at the next unknown kid, but not more than once a minute.
JWKS_REFETCH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ExternalIdentity:
    provider: str
    account_id: str
    email: str | None
    email_verified: bool
    name: str | None


class ProviderUnavailable(ServiceUnavailable):
    default_detail = "The identity provider cannot be reached; try again later."


class ProviderError(BadGateway):
    default_detail = "The identity provider gave an invalid answer."


class CodeRejected(InvalidInput):
    default_detail = "The identity provider did not accept the authorization code."


class Provider(Protocol):
    name: str
    uses_nonce: bool

    async def authorization_url(
        self,
        http: httpx.AsyncClient,
        *,
        state: str,
        code_challenge: str,
        nonce: str | None,
        redirect_uri: str,
    ) -> str: ...

    async def identity(
        self,
        http: httpx.AsyncClient,
        *,
        code: str,
        code_verifier: str,
        nonce: str | None,
        redirect_uri: str,
    ) -> ExternalIdentity: ...


async def _call(http: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(detail="The identity provider did not answer in time.") from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable from exc
    if response.status_code >= 500:
        raise ProviderError(f"The identity provider failed (HTTP {response.status_code}).")
    return response


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ProviderError from exc
    if not isinstance(body, dict):
        raise ProviderError
    return body


async def _exchange_code(
    http: httpx.AsyncClient,
    token_url: str,
    config: OAuthProvider,
    form: dict[str, str],
    *,
    basic_auth: bool = True,
) -> dict[str, Any]:
    """Redeem the code at the token endpoint; client_secret_basic unless the provider takes
    the credentials in the form (GitHub)."""
    secret = config.client_secret.get_secret_value()
    credentials: dict[str, Any] = {"auth": (config.client_id, secret)}
    if not basic_auth:
        form = {**form, "client_id": config.client_id, "client_secret": secret}
        credentials = {}
    response = await _call(
        http,
        "POST",
        token_url,
        data=form,
        headers={"Accept": "application/json"},
        **credentials,
    )
    body = _json_object(response)
    if response.status_code >= 400 or "error" in body or "access_token" not in body:
        raise CodeRejected
    return body


def _authorization_query(
    config: OAuthProvider,
    scopes: list[str],
    *,
    state: str,
    code_challenge: str,
    redirect_uri: str,
    **extra: str,
) -> str:
    """The query of an authorization-code request with PKCE S256 (RFC 6749, RFC 7636)."""
    query = {
        "response_type": "code",
        "client_id": config.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return urlencode(query)


def _code_grant(code: str, code_verifier: str, redirect_uri: str) -> dict[str, str]:
    """The token request that redeems an authorization code with its PKCE verifier."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }


class GitHubProvider:
    """GitHub OAuth apps: no OpenID Connect, so the account comes from the REST API and the
    email from its list of the user's addresses (the primary one, if verified)."""

    uses_nonce = False
    AUTHORIZE_URL = "https://github.com/login/oauth/authorize"
    TOKEN_URL = "https://github.com/login/oauth/access_token"
    API_URL = "https://api.github.com"

    def __init__(self, name: str, config: OAuthProvider) -> None:
        self.name = name
        self.config = config
        self.scopes = config.scopes or ["read:user", "user:email"]

    async def authorization_url(
        self,
        http: httpx.AsyncClient,
        *,
        state: str,
        code_challenge: str,
        nonce: str | None,
        redirect_uri: str,
    ) -> str:
        query = _authorization_query(
            self.config,
            self.scopes,
            state=state,
            code_challenge=code_challenge,
            redirect_uri=redirect_uri,
            allow_signup="true",
        )
        return f"{self.AUTHORIZE_URL}?{query}"

    async def identity(
        self,
        http: httpx.AsyncClient,
        *,
        code: str,
        code_verifier: str,
        nonce: str | None,
        redirect_uri: str,
    ) -> ExternalIdentity:
        tokens = await _exchange_code(
            http,
            self.TOKEN_URL,
            self.config,
            _code_grant(code, code_verifier, redirect_uri),
            basic_auth=False,
        )
        headers = {
            "Authorization": f"Bearer {tokens['access_token']}",
            "Accept": "application/vnd.github+json",
        }
        user = _json_object(await _call(http, "GET", f"{self.API_URL}/user", headers=headers))
        emails_response = await _call(http, "GET", f"{self.API_URL}/user/emails", headers=headers)
        try:
            emails = emails_response.json()
        except ValueError as exc:
            raise ProviderError from exc
        if "id" not in user or not isinstance(emails, list):
            raise ProviderError
        primary = next(
            (
                entry
                for entry in emails
                if isinstance(entry, dict) and entry.get("primary") and entry.get("verified")
            ),
            None,
        )
        return ExternalIdentity(
            provider=self.name,
            account_id=str(user["id"]),
            email=str(primary["email"]).lower() if primary else None,
            email_verified=primary is not None,
            name=user.get("name") or user.get("login"),
        )


@dataclass(frozen=True, slots=True)
class OIDCMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None


GOOGLE = OIDCMetadata(
    issuer="https://accounts.google.com",
    authorization_endpoint="https://accounts.google.com/o/oauth2/v2/auth",
    token_endpoint="https://oauth2.googleapis.com/token",
    jwks_uri="https://www.googleapis.com/oauth2/v3/certs",
    userinfo_endpoint="https://openidconnect.googleapis.com/v1/userinfo",
)


class OIDCProvider:
    """Any OpenID Connect provider: endpoints from its discovery document (or built in, for
    Google), identity from the ID token, verified against the provider's JWKS."""

    uses_nonce = True

    def __init__(
        self, name: str, config: OAuthProvider, metadata: OIDCMetadata | None = None
    ) -> None:
        self.name = name
        self.config = config
        self.scopes = config.scopes or ["openid", "email", "profile"]
        self._metadata = metadata
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_fetched_at = float("-inf")

    async def metadata(self, http: httpx.AsyncClient) -> OIDCMetadata:
        """The provider's endpoints, read from discovery once and then kept."""
        if self._metadata is None:
            assert self.config.discovery_url is not None  # Settings requires it for oidc
            document = _json_object(await _call(http, "GET", self.config.discovery_url))
            try:
                self._metadata = OIDCMetadata(
                    issuer=str(document["issuer"]),
                    authorization_endpoint=str(document["authorization_endpoint"]),
                    token_endpoint=str(document["token_endpoint"]),
                    jwks_uri=str(document["jwks_uri"]),
                    userinfo_endpoint=document.get("userinfo_endpoint"),
                )
            except KeyError as exc:
                raise ProviderError("The provider's discovery document is incomplete.") from exc
        return self._metadata

    async def authorization_url(
        self,
        http: httpx.AsyncClient,
        *,
        state: str,
        code_challenge: str,
        nonce: str | None,
        redirect_uri: str,
    ) -> str:
        metadata = await self.metadata(http)
        query = _authorization_query(
            self.config,
            self.scopes,
            state=state,
            code_challenge=code_challenge,
            redirect_uri=redirect_uri,
            nonce=nonce or "",
        )
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return f"{metadata.authorization_endpoint}{separator}{query}"

    async def identity(
        self,
        http: httpx.AsyncClient,
        *,
        code: str,
        code_verifier: str,
        nonce: str | None,
        redirect_uri: str,
    ) -> ExternalIdentity:
        metadata = await self.metadata(http)
        tokens = await _exchange_code(
            http,
            metadata.token_endpoint,
            self.config,
            _code_grant(code, code_verifier, redirect_uri),
        )
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderError("The provider returned no ID token.")
        claims = await self._verified_claims(http, metadata, id_token, nonce)
        if "email" not in claims and metadata.userinfo_endpoint:
            userinfo = await self._userinfo(http, metadata, tokens)
            # OpenID Connect Core 5.3.4: an answer about another subject must not be used.
            if str(userinfo.get("sub")) != str(claims["sub"]):
                raise ProviderError("The provider's userinfo is about another subject.")
            claims = {**userinfo, **claims}
        email = claims.get("email")
        return ExternalIdentity(
            provider=self.name,
            account_id=str(claims["sub"]),
            email=str(email).lower() if email else None,
            email_verified=email is not None and claims.get("email_verified") in (True, "true"),
            name=claims.get("name"),
        )

    async def _verified_claims(
        self, http: httpx.AsyncClient, metadata: OIDCMetadata, id_token: str, nonce: str | None
    ) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise ProviderError("The provider's ID token is malformed.") from exc
        key = await self._key(http, metadata, str(header.get("kid", "")))
        algorithm = key.algorithm_name
        if algorithm not in ID_TOKEN_ALGORITHMS or header.get("alg") != algorithm:
            raise ProviderError("The provider's ID token uses an unexpected algorithm.")
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=[algorithm],
                audience=self.config.client_id,
                issuer=_issuers(metadata.issuer),
                leeway=ID_TOKEN_LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise ProviderError(f"The provider's ID token is not valid ({exc}).") from exc
        if nonce is None or claims.get("nonce") != nonce:
            raise ProviderError("The provider's ID token does not answer this sign-in (nonce).")
        return claims

    async def _key(self, http: httpx.AsyncClient, metadata: OIDCMetadata, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is None and time.monotonic() - self._keys_fetched_at >= JWKS_REFETCH_SECONDS:
            document = _json_object(await _call(http, "GET", metadata.jwks_uri))
            self._keys_fetched_at = time.monotonic()
            keys: dict[str, jwt.PyJWK] = {}
            for entry in document.get("keys", []):
                try:
                    parsed = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    continue  # a key type or algorithm this service does not use
                if parsed.key_id:
                    keys[parsed.key_id] = parsed
            self._keys = keys
            key = keys.get(kid)
        if key is None:
            raise ProviderError("The provider's ID token is signed with an unknown key.")
        return key

    async def _userinfo(
        self, http: httpx.AsyncClient, metadata: OIDCMetadata, tokens: dict[str, Any]
    ) -> dict[str, Any]:
        assert metadata.userinfo_endpoint is not None
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        return _json_object(await _call(http, "GET", metadata.userinfo_endpoint, headers=headers))


def _issuers(issuer: str) -> list[str]:
    # Google's ID tokens name either form of its issuer.
    if issuer == GOOGLE.issuer:
        return [issuer, "accounts.google.com"]
    return [issuer]


def build_providers(settings: Settings) -> dict[str, Provider]:
    """One provider object per configured name; they keep discovery and keys between calls."""
    providers: dict[str, Provider] = {}
    for name, config in settings.oauth_providers.items():
        if config.kind == "github":
            providers[name] = GitHubProvider(name, config)
        elif config.kind == "google":
            providers[name] = OIDCProvider(name, config, GOOGLE)
        else:
            providers[name] = OIDCProvider(name, config)
    return providers
