"""A real OpenID Connect provider on 127.0.0.1, for sign-in tests over real HTTP.

`OIDCStandin` serves discovery, `/authorize` (validation only: tests approve through
`approve()`), `/token`, `/userinfo` and `/jwks` from a Starlette app under uvicorn, in a thread
of its own with its own event loop, on a free port. It counts requests per path, keeps every
token request for assertions, and has knobs for negative tests: tamper with or forge the next
ID token (`alter_next_id_token`, `forge_next_id_token`, `send_unsigned_next_id_token`), make an
endpoint fail (`fail("/token", "hang" | "error" | "garbage")`), change what userinfo says
(`alter_userinfo`) or stop the server (`stop()`).

    standin = OIDCStandin(client_id="authsvc-test", client_secret="s3cret").start()
    code, state = standin.approve(authorization_url, Identity(sub="42", email="a@example.com"))
"""

from __future__ import annotations

import asyncio
import collections
import socket
import threading
import time
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.oauth.authorization_server import (
    AuthorizationRejected,
    AuthorizationServer,
    Client,
    Identity,
    TokenError,
    TokenRequest,
)

HOST = "127.0.0.1"
Failure = Literal["hang", "error", "garbage"]
# A hanging endpoint gives up after this long even if nobody resets it, so that the server
# can always shut down.
MAX_HANG_SECONDS = 10.0
PATHS = ("/.well-known/openid-configuration", "/authorize", "/token", "/userinfo", "/jwks")


class OIDCStandin:
    """An OpenID Connect provider in a background thread. Start with `start()`; `reset()`
    between tests; `stop()` makes its port refuse connections."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uris: frozenset[str] | None = None,
    ) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self.url = f"http://{HOST}:{self._listener.getsockname()[1]}"
        self.server: AuthorizationServer[Identity] = AuthorizationServer(
            issuer=self.url,
            authorization_endpoint=f"{self.url}/authorize",
            clients=[Client(client_id, client_secret, redirect_uris)],
        )
        self.requests: collections.Counter[str] = collections.Counter()
        self._failures: dict[str, Failure] = {}
        self._released = threading.Event()  # ends hanging requests
        self._userinfo_changes: dict[str, Any] = {}
        self._lock = threading.Lock()
        config = uvicorn.Config(
            self._asgi_app(), log_level="warning", access_log=False, lifespan="off"
        )
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._uvicorn.run,
            kwargs={"sockets": [self._listener]},
            name=f"oidc stand-in {self.url}",
            daemon=True,
        )

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    @property
    def token_requests(self) -> list[TokenRequest]:
        return self.server.token_requests

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> OIDCStandin:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the OIDC stand-in did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Shut the server down (idempotent): afterwards its port refuses connections."""
        self._released.set()
        self._uvicorn.should_exit = True
        if self._thread.is_alive():
            self._thread.join(15)
        self._listener.close()
        assert not self._thread.is_alive(), "the OIDC stand-in did not stop"

    def reset(self) -> None:
        """Back to a healthy provider with no codes, tokens, counts or pending tampering."""
        with self._lock:
            self._failures.clear()
            self.requests.clear()
            self._userinfo_changes.clear()
            self._released.set()
        self.server.reset()

    # --- knobs ---------------------------------------------------------------------------

    def approve(self, authorization_url: str, identity: Identity) -> tuple[str, str]:
        """The user signs in as `identity` and consents: the `(code, state)` sent back."""
        return self.server.approve(authorization_url, identity)

    def alter_next_id_token(self, *, header: dict[str, Any] | None = None, **claims: Any) -> None:
        self.server.alter_next_id_token(header=header, **claims)

    def forge_next_id_token(self, *, kid: str | None = None) -> None:
        self.server.forge_next_id_token(kid=kid)

    def send_unsigned_next_id_token(self) -> None:
        self.server.send_unsigned_next_id_token()

    def alter_userinfo(self, **claims: Any) -> None:
        """Change claims (None drops one) of every userinfo answer until reset."""
        with self._lock:
            self._userinfo_changes.update(claims)

    def fail(self, path: str, failure: Failure) -> None:
        """Make `path` hang (until reset, at most MAX_HANG_SECONDS), answer 500, or answer 200
        with a body that is not JSON."""
        assert path in PATHS, path
        with self._lock:
            self._failures[path] = failure
            if failure == "hang":
                self._released.clear()

    # --- HTTP ----------------------------------------------------------------------------

    def _asgi_app(self) -> Starlette:
        return Starlette(
            routes=[
                Route(PATHS[0], self._discovery),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
                Route("/userinfo", self._userinfo, methods=["GET", "POST"]),
                Route("/jwks", self._jwks),
            ]
        )

    async def _failure_response(self, request: Request) -> Response | None:
        path = request.url.path
        with self._lock:
            self.requests[path] += 1
            failure = self._failures.get(path)
        if failure == "hang":
            await asyncio.to_thread(self._released.wait, MAX_HANG_SECONDS)
            return PlainTextResponse("too late", status_code=504)
        if failure == "error":
            return PlainTextResponse("Internal Server Error", status_code=500)
        if failure == "garbage":
            return Response("<html>Service Temporarily Overloaded</html>", media_type="text/html")
        return None

    async def _discovery(self, request: Request) -> Response:
        if failed := await self._failure_response(request):
            return failed
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "userinfo_endpoint": f"{self.url}/userinfo",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["authorization_code"],
            }
        )

    async def _authorize(self, request: Request) -> Response:
        if failed := await self._failure_response(request):
            return failed
        query: dict[str, list[str]] = {}
        for name, value in request.query_params.multi_items():
            query.setdefault(name, []).append(value)
        try:
            self.server.check_authorization_request(query)
        except AuthorizationRejected as exc:
            return PlainTextResponse(f"invalid authorization request: {exc}", status_code=400)
        return PlainTextResponse("sign-in page (tests approve through OIDCStandin.approve)")

    async def _token(self, request: Request) -> Response:
        if failed := await self._failure_response(request):
            return failed
        form = {name: str(value) for name, value in (await request.form()).items()}
        try:
            grant, access_token = self.server.redeem(form, request.headers.get("authorization"))
        except TokenError as exc:
            return JSONResponse(exc.body(), status_code=exc.status, headers=_NO_STORE)
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": grant.scope,
                "id_token": self.server.id_token(grant),
            },
            headers=_NO_STORE,
        )

    async def _userinfo(self, request: Request) -> Response:
        if failed := await self._failure_response(request):
            return failed
        grant = self.server.grant_for(request.headers.get("authorization"))
        if grant is None:
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        with self._lock:
            claims = {**grant.identity.claims(), **self._userinfo_changes}
        return JSONResponse({name: value for name, value in claims.items() if value is not None})

    async def _jwks(self, request: Request) -> Response:
        if failed := await self._failure_response(request):
            return failed
        return JSONResponse(self.server.jwks())


_NO_STORE = {"Cache-Control": "no-store"}
