"""A relying party for the browser tests: a tiny Starlette app under uvicorn, in a thread of its
own on a free port of 127.0.0.1, that signs users in at an OpenID Provider with Authlib's own
client (`AsyncOAuth2Client`, unmodified), the way a third-party web app would. Its address
says `localhost`: another site than a provider at 127.0.0.1, as a third-party app is.

    rp = RelyingParty(provider=live_service.url).start()
    rp.use_client(client_id, client_secret)        # no secret: a public client ("none")
    await page.goto(rp.login_url(prompt="consent"))
    ... the browser signs in at the provider and lands on the relying party's /callback ...
    result = rp.results[-1]
    assert result.error is None and result.sub == user_id and result.has_refresh_token

Its pages:

- `GET /login?scope=&prompt=&max_age=&login_hint=` redirects to the provider's authorization
  endpoint with `state`, `nonce` and a PKCE S256 challenge (scope "openid profile email" unless
  given; the others only when given).
- `GET /callback` checks `state` and `iss` (RFC 9207), redeems the code (HTTP Basic for a
  confidential client, `client_id` alone for a public one), validates the ID token (signature
  against the provider's JWKS, `iss`, `aud`, `exp`, `nonce`, `at_hash`, and `auth_time`
  after a `max_age`), calls userinfo, and
  shows `<pre id="result">` (JSON: sub, ID token claims, userinfo, whether a refresh token
  came) or `<pre id="error">` (JSON: error, error_description). Each callback is appended to
  `results`.
- `GET /logout` redirects to the provider's `end_session_endpoint` with the last ID token as
  `id_token_hint`, `post_logout_redirect_uri` (`/signed-out`) and a `state`;
  `GET /signed-out` says whether that `state` came back, and appends to `sign_outs`.

Endpoints come from the provider's `/.well-known/openid-configuration`, read at the first
sign-in; `endpoints` overrides any of them (for a provider whose discovery document does not
list them yet).
"""

from __future__ import annotations

import html
import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.jose import JsonWebToken
from authlib.jose.errors import JoseError
from authlib.oidc.core import CodeIDToken
from joserfc.errors import JoseError as ClaimsError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

HOST = "127.0.0.1"
DEFAULT_SCOPE = "openid profile email"
# Parameters of /login handed on to the authorization request when given.
PASSED_ON = ("prompt", "max_age", "login_hint")
# A busy CI box (two workers on two cores) can keep a request to 127.0.0.1 waiting for seconds.
HTTP_TIMEOUT_SECONDS = 30
# How much older than `max_age` an `auth_time` may be: the browser's way from the sign-in to
# the callback and the ID token check, on a busy machine.
AUTH_TIME_LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class ClientRegistration:
    """How the relying party is registered at the provider. No secret: a public client."""

    client_id: str
    client_secret: str | None = None

    @property
    def token_endpoint_auth_method(self) -> str:
        return "none" if self.client_secret is None else "client_secret_basic"


@dataclass(frozen=True)
class SignInResult:
    """What one callback came to: the tokens, the validated ID token's claims and userinfo, or
    an error (`error` set, as the provider sent it or as the relying party found it)."""

    callback: dict[str, str]
    error: str | None = None
    error_description: str | None = None
    token: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)
    userinfo: dict[str, Any] = field(default_factory=dict)

    @property
    def sub(self) -> str | None:
        return self.claims.get("sub")

    @property
    def has_refresh_token(self) -> bool:
        return "refresh_token" in self.token

    @property
    def id_token(self) -> str | None:
        return self.token.get("id_token")

    def shown(self) -> dict[str, Any]:
        """What the result page shows."""
        if self.error is not None:
            return {"error": self.error, "error_description": self.error_description}
        return {
            "sub": self.sub,
            "id_token_claims": self.claims,
            "userinfo": self.userinfo,
            "scope": self.token.get("scope"),
            "has_refresh_token": self.has_refresh_token,
        }


@dataclass(frozen=True)
class SignOutResult:
    """The provider sent the browser back to `/signed-out`."""

    state: str | None
    state_matches: bool


@dataclass(frozen=True)
class _PendingSignIn:
    code_verifier: str
    nonce: str
    registration: ClientRegistration
    max_age: str | None


class SignInFailed(Exception):
    """The callback cannot complete; becomes a `SignInResult` with this error."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class RelyingParty:
    """The relying party in a background thread. `start()`, then `use_client(...)` once the
    provider knows its `redirect_uri`; `stop()` makes its port refuse connections."""

    def __init__(
        self,
        *,
        provider: str,
        endpoints: Mapping[str, str] | None = None,
        hostname: str = "localhost",
    ) -> None:
        """`hostname` names the relying party's address (it listens on 127.0.0.1 either way):
        `localhost` makes it another site than a provider at 127.0.0.1, as a third-party app
        is, so the browser applies SameSite cookie rules as it would in production."""
        self.provider = provider.rstrip("/")
        self.endpoints = dict(endpoints or {})
        self.registration: ClientRegistration | None = None
        self.results: list[SignInResult] = []
        self.sign_outs: list[SignOutResult] = []
        self._metadata: dict[str, Any] | None = None
        self._pending_sign_ins: dict[str, _PendingSignIn] = {}
        self._pending_sign_outs: set[str] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self.url = f"http://{hostname}:{self._listener.getsockname()[1]}"
        config = uvicorn.Config(self._app(), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)  # not in the main thread: no signal handlers
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._listener]},
            name=f"relying party {self.url}",
            daemon=True,
        )

    @property
    def redirect_uri(self) -> str:
        return f"{self.url}/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.url}/signed-out"

    def login_url(self, **params: str | int) -> str:
        """Where a browser starts a sign-in: `/login` with `scope`, `prompt`, `max_age`,
        `login_hint` as given."""
        return str(httpx.URL(f"{self.url}/login", params=params))

    @property
    def logout_url(self) -> str:
        return f"{self.url}/logout"

    def use_client(self, client_id: str, client_secret: str | None = None) -> None:
        """Sign in as this registered client from now on (no secret: a public client)."""
        self.registration = ClientRegistration(client_id, client_secret)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> RelyingParty:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the relying party did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Shut the server down (idempotent): afterwards its port refuses connections."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(15)
        self._listener.close()
        assert not self._thread.is_alive(), "the relying party did not stop"

    # --- the provider --------------------------------------------------------------------

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, read once, with `endpoints` laid over it."""
        if self._metadata is None:
            url = f"{self.provider}/.well-known/openid-configuration"
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
                response = await http.get(url)
            response.raise_for_status()
            self._metadata = {**response.json(), **self.endpoints}
        return self._metadata

    def _oauth_client(self, registration: ClientRegistration) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=registration.client_id,
            client_secret=registration.client_secret,
            token_endpoint_auth_method=registration.token_endpoint_auth_method,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT_SECONDS,
        )

    # --- HTTP ----------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/login", self._login),
                Route("/callback", self._callback),
                Route("/logout", self._logout),
                Route("/signed-out", self._signed_out),
            ]
        )

    async def _login(self, request: Request) -> Response:
        registration = self.registration
        if registration is None:
            return _page("No client", "error", {"error": "use_client() was not called"}, 500)
        metadata = await self.metadata()
        nonce, code_verifier = generate_token(32), generate_token(64)
        extra = {
            name: request.query_params[name] for name in PASSED_ON if name in request.query_params
        }
        async with self._oauth_client(registration) as oauth:
            url, state = oauth.create_authorization_url(
                metadata["authorization_endpoint"],
                code_verifier=code_verifier,
                nonce=nonce,
                scope=request.query_params.get("scope", DEFAULT_SCOPE),
                **extra,
            )
        self._pending_sign_ins[state] = _PendingSignIn(
            code_verifier, nonce, registration, extra.get("max_age")
        )
        return RedirectResponse(url, status_code=302)

    async def _callback(self, request: Request) -> Response:
        query = dict(request.query_params)
        try:
            result = await self._complete_sign_in(query)
        except SignInFailed as failure:
            result = SignInResult(query, error=failure.error, error_description=failure.description)
        self.results.append(result)
        if result.error is not None:
            return _page("Sign-in failed", "error", result.shown(), 400)
        return _page("Signed in", "result", result.shown(), 200)

    async def _complete_sign_in(self, query: dict[str, str]) -> SignInResult:
        # State first: a response this relying party did not ask for is never acted on, and a
        # state is good for one callback only.
        pending = self._pending_sign_ins.pop(query.get("state", ""), None)
        if pending is None:
            raise SignInFailed("invalid_state", "no sign-in of this relying party has this state")
        metadata = await self.metadata()
        _check_issuer(query, metadata)
        if "error" in query:
            raise SignInFailed(query["error"], query.get("error_description"))
        if "code" not in query:
            raise SignInFailed("invalid_response", "the callback carries neither code nor error")
        async with self._oauth_client(pending.registration) as oauth:
            try:
                token = await oauth.fetch_token(
                    metadata["token_endpoint"],
                    code=query["code"],
                    code_verifier=pending.code_verifier,
                    redirect_uri=self.redirect_uri,
                )
            except OAuthError as refused:
                raise SignInFailed(refused.error, refused.description) from None
            if "id_token" not in token:
                raise SignInFailed("invalid_token_response", "the token response has no ID token")
            claims = await self._validated_id_token(token, pending, metadata)
            response = await oauth.get(metadata["userinfo_endpoint"])
        if response.status_code != 200:
            raise SignInFailed("userinfo_failed", f"{response.status_code}: {response.text}")
        userinfo = response.json()
        # OpenID Connect Core 5.3.2: a userinfo answer about someone else is not used.
        if userinfo.get("sub") != claims["sub"]:
            raise SignInFailed("userinfo_mismatch", "userinfo names another sub than the ID token")
        return SignInResult(query, token=dict(token), claims=claims, userinfo=userinfo)

    async def _validated_id_token(
        self, token: dict[str, Any], pending: _PendingSignIn, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, lifetime, nonce and
        at_hash hold; SignInFailed otherwise."""
        # Only what the provider says it signs with (RS256 when it says nothing), never "none".
        algorithms = metadata.get("id_token_signing_alg_values_supported", ["RS256"])
        jwt = JsonWebToken([algorithm for algorithm in algorithms if algorithm != "none"])
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as http:
            jwks = (await http.get(metadata["jwks_uri"])).json()
        try:
            claims = jwt.decode(
                token["id_token"],
                jwks,
                claims_cls=CodeIDToken,
                claims_options={
                    "iss": {"essential": True, "values": [metadata["issuer"]]},
                    "aud": {"essential": True, "values": [pending.registration.client_id]},
                },
                claims_params={
                    "nonce": pending.nonce,
                    "access_token": token["access_token"],
                    "max_age": pending.max_age,
                },
            )
            claims.validate()
            _check_auth_time(claims, pending.max_age)
        # Authlib decodes with its own JOSE code and validates claims with joserfc's.
        except (JoseError, ClaimsError, ValueError) as invalid:
            raise SignInFailed("invalid_id_token", str(invalid)) from None
        return dict(claims)

    async def _logout(self, request: Request) -> Response:
        metadata = await self.metadata()
        id_token = next((r.id_token for r in reversed(self.results) if r.id_token), None)
        if id_token is None or "end_session_endpoint" not in metadata:
            shown = {"error": "cannot_sign_out", "error_description": "no ID token or endpoint"}
            return _page("Cannot sign out", "error", shown, 400)
        state = generate_token(24)
        self._pending_sign_outs.add(state)
        url = httpx.URL(metadata["end_session_endpoint"]).copy_merge_params(
            {
                "id_token_hint": id_token,
                "post_logout_redirect_uri": self.post_logout_redirect_uri,
                "state": state,
            }
        )
        return RedirectResponse(str(url), status_code=302)

    async def _signed_out(self, request: Request) -> Response:
        state = request.query_params.get("state")
        matches = state is not None and state in self._pending_sign_outs
        self._pending_sign_outs.discard(state or "")
        self.sign_outs.append(SignOutResult(state, matches))
        return _page("Signed out", "signed-out", {"state": state, "state_matches": matches}, 200)


def _check_auth_time(claims: dict[str, Any], max_age: str | None) -> None:
    """OpenID Connect Core 3.1.3.7: after a `max_age` request, the user signed in no longer
    ago than that (Authlib checks only that `auth_time` is there)."""
    if max_age is None:
        return
    signed_in_ago = time.time() - float(claims["auth_time"])
    if signed_in_ago > int(max_age) + AUTH_TIME_LEEWAY_SECONDS:
        raise SignInFailed(
            "invalid_id_token", f"auth_time is {signed_in_ago:.0f} s ago, max_age was {max_age}"
        )


def _check_issuer(query: dict[str, str], metadata: dict[str, Any]) -> None:
    """RFC 9207: an `iss` that names another provider is a mix-up; a provider that promises
    `iss` must send it."""
    if "iss" in query:
        if query["iss"] != metadata["issuer"]:
            raise SignInFailed("invalid_issuer", f"iss {query['iss']!r} is not the provider's")
    elif metadata.get("authorization_response_iss_parameter_supported"):
        raise SignInFailed("invalid_issuer", "the provider promised iss and sent none")


def _page(title: str, element_id: str, shown: dict[str, Any], status: int) -> HTMLResponse:
    body = html.escape(json.dumps(shown, indent=2, sort_keys=True))
    return HTMLResponse(
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        f'<h1>{title}</h1><pre id="{element_id}">{body}</pre>'
        f'<p><a id="login" href="/login">Sign in</a> <a id="logout" href="/logout">Sign out</a>'
        "</p></body></html>",
        status_code=status,
    )
