"""Every operation of the service's OpenAPI document, called in-process over ASGI with inputs
schemathesis derives from the document (valid ones and invalid ones), authenticated as a
superuser or, for the introspection and revocation endpoints, as a service client. Item
routes are also called on items that exist, and a few operations with the one secret they
need (a password), so they get past 404/401 into their logic. Whatever the input, the
service answers without a server error, with a status the document lists for the operation,
in a content type it lists, and with a body that matches the documented schema.

Requests go through the `client` fixture's ASGI transport to the app of the `app` fixture,
on both backends. Bounded: a fixed number of examples per operation and mode, derandomized,
so a run takes the same time and inputs every time.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.support.admins import admin_headers, register_client
from tests.support.flows import PASSWORD, basic, bearer, password_grant, register, sign_in

T = TypeVar("T")
BASE_URL = "http://testserver"
EXAMPLES_PER_MODE = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Operations that end the session of the token they are called with: a throwaway account per
# example, so the superuser keeps a working token for the rest of the run.
SESSION_ENDING = {"POST /auth/logout", "POST /auth/logout-all", "POST /users/me/password"}
CLIENT_AUTHENTICATED = {"POST /auth/introspect", "POST /auth/revoke"}
# Operations about the user a token with `openid` names (OpenID Connect userinfo).
OPENID_SCOPED = {"GET /oauth/userinfo", "POST /oauth/userinfo"}
EXISTING = "existing"  # a third pass: valid input with items and secrets that exist
# Fields generated input cannot guess, for that pass: a password the policy accepts (at least
# 15 characters, not a common one), the superuser's credentials, a throwaway's own password.
KNOWN_BODIES = {
    "POST /auth/register": {"password": PASSWORD},
    "POST /auth/token": {
        "grant_type": "password",
        "username": "root@example.com",
        "password": PASSWORD,
    },
    "POST /users/me/password": {"current_password": PASSWORD, "new_password": f"{PASSWORD}!"},
    # Any token: revocation answers 200 and introspection `{"active": false}` for an unknown
    # one (generated forms, all fields optional, may never happen to include it).
    "POST /auth/introspect": {"token": "not-a-token"},
    "POST /auth/revoke": {"token": "not-a-token"},
}

# Operations no generated input can make succeed: they need a secret the service mailed or an
# OAuth provider issued (no provider is configured here, and so no OAuth link exists).
NEED_A_SECRET = {
    "POST /auth/verify",
    "POST /auth/password/reset",
    "GET /auth/oauth/{provider}/authorize",
    "GET /auth/oauth/{provider}/callback",
    "DELETE /users/me/oauth-accounts/{link_id}",
    # The code of an authenticator only the enrolling user has.
    "POST /users/me/mfa/totp/confirm",
    # A step-up: a sign-in with a confirmed second factor.
    "POST /users/me/mfa/recovery-codes",
    # A user with a second factor, which needs such a code first.
    "DELETE /admin/users/{user_id}/mfa",
    # A PKCE challenge of a registered client's request (and a redirect is its success).
    "GET /oauth/authorize",
    # A grant, which only the consent page in a browser makes (tests/api/test_user_grants.py).
    "DELETE /users/me/grants/{client_id}",
}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # Hundreds of requests from one address: throttling would answer most of them 429.
    return {"rate_limit_enabled": False}


class Fuzzer:
    """Runs hypothesis on a worker thread and sends its requests to the app on the test's
    event loop, where the app's engine and connection pool live. The `client` fixture's ASGI
    transport re-raises unhandled exceptions, so a server error arrives with its traceback."""

    def __init__(
        self, client: httpx.AsyncClient, loop: asyncio.AbstractEventLoop, schema: Any
    ) -> None:
        self.client = client
        self.loop = loop
        self.schema = schema
        self.failures: dict[str, list[str]] = {}
        self.statuses: dict[str, set[int]] = {}

    def on_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def send(self, case: Any, headers: dict[str, str]) -> httpx.Response:
        """The request schemathesis would send (its own serialization), sent over ASGI."""
        prepared = requests.Request(**case.as_transport_kwargs(BASE_URL, headers)).prepare()
        assert prepared.method is not None
        assert prepared.url is not None
        return self.on_loop(
            self.client.request(
                prepared.method,
                prepared.url,
                headers=dict(prepared.headers),
                content=prepared.body,
            )
        )

    def throwaway_bearer(self) -> Callable[[], dict[str, str]]:
        """A fresh account's bearer header per call."""
        counter = iter(range(1_000_000))

        async def sign_up(email: str) -> dict[str, str]:
            await register(self.client, email)
            return bearer((await sign_in(self.client, email))["access_token"])

        return lambda: self.on_loop(sign_up(f"throwaway{next(counter)}@example.com"))

    def fuzz(
        self,
        operation: Any,
        mode: str,
        headers: Callable[[], dict[str, str]],
        path_parameters: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
    ) -> None:
        """Send `EXAMPLES_PER_MODE` generated requests to `operation`; collect what failed."""
        label = f"{operation.method.upper()} {operation.path}"
        generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE

        @settings(
            max_examples=EXAMPLES_PER_MODE,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # report the first failure, unshrunk
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=generation))
        def exercise(case: Any) -> None:
            if path_parameters:
                case.path_parameters.update(path_parameters)
            if body and isinstance(case.body, dict):
                case.body.update(body)
            sent = headers()
            try:
                response = self.send(case, sent)
            except Exception as error:  # an unhandled error in the app: a 500 to a client
                cause = "".join(traceback.format_exception(error)[-3:])
                raise AssertionError(
                    f"server error (unhandled exception)\n{case.as_curl_command(sent)}\n{cause}"
                ) from error
            self.statuses.setdefault(label, set()).add(response.status_code)
            case.validate_response(response, checks=CHECKS, headers=sent)

        try:
            exercise()
        except Unsatisfiable:
            # Nothing to make invalid: the operation takes no parameters and no body.
            assert mode == "negative", label
        except (Exception, BaseExceptionGroup) as failure:  # collected: one run reports all
            self.failures.setdefault(label, []).append(f"[{mode}] {failure}"[:2000])


ITEM_ROUTES = {
    "/admin/users/{user_id}": "user_id",
    "/admin/users/{user_id}/roles": "user_id",
    "/admin/users/{user_id}/sessions": "user_id",
    "/admin/roles/{name}": "name",
    "/admin/roles/{name}/permissions": "name",
    "/admin/permissions/{codename}": "codename",
    "/admin/clients/{client_id}": "client_id",
    "/users/me/sessions/{session_id}": "session_id",
}


async def existing_item(
    client: httpx.AsyncClient, root: dict[str, str], path: str, tag: str
) -> str:
    """A fresh item for the item route `path` (a user, role, permission, client or session),
    so each operation meets one that earlier operations did not rename or delete. Never the
    superuser, its current session or the client the run authenticates with."""
    kind = ITEM_ROUTES[path]
    if kind == "user_id":
        victim = await register(client, f"{tag}@example.com")
        await sign_in(client, f"{tag}@example.com")  # a session to end
        return str(victim["id"])
    if kind == "name":
        created = await client.post("/admin/roles", json={"name": tag}, headers=root)
        assert created.status_code == 201, created.text
        return tag
    if kind == "codename":
        created = await client.post(
            "/admin/permissions", json={"codename": f"{tag}:read"}, headers=root
        )
        assert created.status_code == 201, created.text
        return f"{tag}:read"
    if kind == "client_id":
        return (await register_client(client, root, name=tag))[0]
    # Another session of the superuser: ending it leaves the token of the current one valid.
    await sign_in(client, "root@example.com")
    listed = (await client.get("/users/me/sessions", headers=root)).json()
    return str(next(item["id"] for item in listed if not item["current"]))


async def sign_in_for_openid(client: httpx.AsyncClient) -> dict[str, str]:
    """The superuser's bearer header with the scopes of OpenID Connect."""
    response = await password_grant(client, "root@example.com", scope="openid profile email")
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


async def test_every_operation_survives_generated_input(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    root = await admin_headers(client, sessions, superuser=True)
    client_id, secret = await register_client(client, root, scopes=["introspect"])
    service_client = basic(client_id, secret)
    served = await client.get("/openapi.json")
    assert served.status_code == 200
    schema = schemathesis.openapi.from_dict(served.json())
    fuzzer = Fuzzer(client, asyncio.get_running_loop(), schema)

    def run() -> list[str]:
        fresh_user = fuzzer.throwaway_bearer()
        labels = []
        for result in fuzzer.schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            labels.append(label)
            if label in CLIENT_AUTHENTICATED:
                headers: Callable[[], dict[str, str]] = lambda: service_client  # noqa: E731
            elif label in OPENID_SCOPED:
                # Signed in now: operations before may have ended the superuser's other sessions.
                openid_root = fuzzer.on_loop(sign_in_for_openid(client))
                headers = lambda bound=openid_root: bound  # noqa: E731
            elif label in SESSION_ENDING:
                headers = fresh_user
            else:
                headers = lambda: root  # noqa: E731
            fuzzer.fuzz(operation, "positive", headers)
            fuzzer.fuzz(operation, "negative", headers)
            if operation.path in ITEM_ROUTES:
                item = fuzzer.on_loop(
                    existing_item(client, root, operation.path, f"item{len(labels)}")
                )
                fuzzer.fuzz(operation, EXISTING, headers, {ITEM_ROUTES[operation.path]: item})
            if label in KNOWN_BODIES:
                fuzzer.fuzz(operation, EXISTING, headers, body=KNOWN_BODIES[label])
        return labels

    labels = await asyncio.to_thread(run)

    assert len(labels) == len(set(labels)) >= 48, labels
    assert set(ITEM_ROUTES) <= {label.split(" ")[1] for label in labels}
    # The credentials and the existing items work: every operation whose input can succeed
    # without a secret (a token from a mail, an OAuth code) succeeded at least once.
    never_succeeded = {
        label
        for label in labels
        if not any(status < 300 for status in fuzzer.statuses.get(label, ()))
    }
    assert never_succeeded <= NEED_A_SECRET, sorted(never_succeeded - NEED_A_SECRET)
    failed = {label: found for label, found in fuzzer.failures.items() if found}
    assert not failed, "\n\n".join(
        f"{label}:\n" + "\n".join(sorted(set(found))[:3]) for label, found in failed.items()
    )
