"""`AuthsvcKit`: the JWKS cache, verifier and introspector for one authsvc, wired together."""

from __future__ import annotations

import json
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import httpx

from authsvc_kit.claims import Claims
from authsvc_kit.errors import AuthsvcUnavailable
from authsvc_kit.introspection import Introspector
from authsvc_kit.jwks import (
    DEFAULT_MAX_AGE,
    DEFAULT_MIN_REFETCH_INTERVAL,
    DEFAULT_TIMEOUT,
    JWKSCache,
)
from authsvc_kit.verifier import DEFAULT_ALGORITHMS, DEFAULT_LEEWAY, TokenVerifier

if TYPE_CHECKING:
    from authsvc_kit.fastapi import Authenticated

JWKS_PATH = "/.well-known/jwks.json"
INTROSPECTION_PATH = "/auth/introspect"
DISCOVERY_PATH = "/.well-known/openid-configuration"


class KitOptions(TypedDict, total=False):
    """Optional settings of `AuthsvcKit` and its factories."""

    client_id: str | None
    client_secret: str | None
    http_client: httpx.AsyncClient | None
    algorithms: Iterable[str]
    leeway: float
    max_age: float
    min_refetch_interval: float
    timeout: float


class AuthsvcKit:
    """Everything a resource server needs to trust one authsvc's tokens.

    `verifier` checks tokens locally against the cached JWKS; `introspector` (only with
    `client_id` and `client_secret`, a service client holding the `introspect` scope) asks
    authsvc. One HTTP client serves both; it is closed by `aclose` unless it was passed in.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str,
        introspection_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = DEFAULT_LEEWAY,
        max_age: float = DEFAULT_MAX_AGE,
        min_refetch_interval: float = DEFAULT_MIN_REFETCH_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._owns_client = http_client is None
        self.http_client = http_client or httpx.AsyncClient()
        self.jwks = JWKSCache(
            jwks_url,
            http_client=self.http_client,
            max_age=max_age,
            min_refetch_interval=min_refetch_interval,
            timeout=timeout,
        )
        self.verifier = TokenVerifier(
            issuer, audience, self.jwks, algorithms=algorithms, leeway=leeway
        )
        self.introspector: Introspector | None = None
        if client_id and client_secret:
            if not introspection_url:
                raise ValueError("client credentials given without an introspection URL")
            self.introspector = Introspector(
                introspection_url,
                client_id,
                client_secret,
                http_client=self.http_client,
                timeout=timeout,
            )

    @classmethod
    def from_issuer(
        cls,
        issuer_url: str,
        audience: str,
        *,
        service_url: str | None = None,
        **options: Unpack[KitOptions],
    ) -> AuthsvcKit:
        """A kit for the authsvc whose `AUTH_ISSUER` is `issuer_url`, reached at
        `service_url` (default: the issuer URL) under its standard paths. No I/O."""
        base = (service_url or issuer_url).rstrip("/")
        return cls(
            issuer=issuer_url,
            audience=audience,
            jwks_url=base + JWKS_PATH,
            introspection_url=base + INTROSPECTION_PATH,
            **options,
        )

    @classmethod
    async def discover(
        cls,
        service_url: str,
        audience: str,
        *,
        expected_issuer: str | None = None,
        **options: Unpack[KitOptions],
    ) -> AuthsvcKit:
        """A kit configured from authsvc's `/.well-known/openid-configuration`: its issuer,
        JWKS URL and introspection endpoint. `expected_issuer`, if given, must match.

        `AuthsvcUnavailable` if the metadata cannot be read; `ValueError` on an issuer
        mismatch.
        """
        base = service_url.rstrip("/")
        http_client = options.get("http_client")
        metadata = await _fetch_metadata(
            http_client or httpx.AsyncClient(),
            base + DISCOVERY_PATH,
            close=http_client is None,
            request_timeout=options.get("timeout", DEFAULT_TIMEOUT),
        )
        issuer, jwks_url = metadata.get("issuer"), metadata.get("jwks_uri")
        if not isinstance(issuer, str) or not isinstance(jwks_url, str):
            raise AuthsvcUnavailable("provider metadata without `issuer` or `jwks_uri`")
        if expected_issuer is not None and issuer != expected_issuer:
            raise ValueError(f"authsvc at {base} is issuer {issuer!r}, not {expected_issuer!r}")
        introspection_url = metadata.get("introspection_endpoint")
        if not isinstance(introspection_url, str):
            introspection_url = base + INTROSPECTION_PATH
        return cls(
            issuer=issuer,
            audience=audience,
            jwks_url=jwks_url,
            introspection_url=introspection_url,
            **options,
        )

    async def verify(self, token: str) -> Claims:
        """`TokenVerifier.verify`: the claims of a valid token, or `InvalidToken`."""
        return await self.verifier.verify(token)

    async def introspect(self, token: str) -> Claims:
        """`Introspector.introspect`; `RuntimeError` if the kit has no client credentials."""
        if self.introspector is None:
            raise RuntimeError("introspection needs client_id and client_secret")
        return await self.introspector.introspect(token)

    def authenticated(
        self,
        scopes: Iterable[str] = (),
        *,
        acr_values: str | Iterable[str] = (),
        max_age: int | None = None,
        check_revocation: bool = False,
    ) -> Authenticated:
        """A FastAPI dependency (see `authsvc_kit.fastapi.Authenticated`) returning the
        caller's claims; `check_revocation` also asks authsvc through introspection.

        Step-up (RFC 9470): `acr_values`, the sign-in's `acr` must be one of them; `max_age`,
        the user must have signed in at most that many seconds ago (plus the verifier's
        `leeway` for clock skew); else 401 `insufficient_user_authentication`.
        """
        from authsvc_kit.fastapi import Authenticated

        if check_revocation and self.introspector is None:
            raise RuntimeError("check_revocation needs client_id and client_secret")
        return Authenticated(
            self.verifier,
            scopes=scopes,
            acr_values=acr_values,
            max_age=max_age,
            introspector=self.introspector if check_revocation else None,
        )

    def require_acr(
        self,
        *acr_values: str,
        max_age: int | None = None,
        scopes: Iterable[str] = (),
        check_revocation: bool = False,
    ) -> Authenticated:
        """`authenticated(scopes, acr_values=acr_values, ...)`: a FastAPI dependency letting
        through only users signed in at one of `acr_values` (`kit.require_acr("aal2")`: with
        a second factor), and, with `max_age`, at most that many seconds ago."""
        if not acr_values:
            raise ValueError("require_acr needs at least one acr value, e.g. 'aal2'")
        return self.authenticated(
            scopes, acr_values=acr_values, max_age=max_age, check_revocation=check_revocation
        )

    async def aclose(self) -> None:
        """Close the HTTP client, if the kit made it."""
        if self._owns_client:
            await self.http_client.aclose()

    async def __aenter__(self) -> AuthsvcKit:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


async def _fetch_metadata(
    client: httpx.AsyncClient, url: str, *, close: bool, request_timeout: float
) -> dict[str, Any]:
    try:
        response = await client.get(
            url, headers={"Accept": "application/json"}, timeout=request_timeout
        )
    except httpx.HTTPError as error:
        raise AuthsvcUnavailable(f"discovery request failed: {type(error).__name__}") from error
    finally:
        if close:
            await client.aclose()
    if response.status_code != 200:
        raise AuthsvcUnavailable(f"discovery answered HTTP {response.status_code}")
    try:
        metadata: Any = json.loads(response.content)
    except ValueError as error:
        raise AuthsvcUnavailable("provider metadata is not JSON") from error
    if not isinstance(metadata, dict):
        raise AuthsvcUnavailable("provider metadata is not a JSON object")
    return metadata
