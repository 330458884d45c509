"""Three replicas behave as one service: whatever one of them does, the others know at once.

Sign-in on A, refresh on B, sign-out everywhere on C; one refresh token replayed at all three
together; a password guessed at all three; a sign-in with a provider begun on A and finished
on B; a key rotated while all three serve. Every replica is a real `authsvc serve` process on
one PostgreSQL database and one Redis (see conftest.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest

from tests.oauth.authorization_server import Identity
from tests.oauth.flows import finish, start
from tests.oauth.provider_standin import OIDCStandin
from tests.scale.conftest import ACCOUNT_IP_LIMIT
from tests.support.flows import PASSWORD, bearer, password_grant, refresh, register, sign_in
from tests.support.processes import ServeProcess, run_authsvc

pytestmark = pytest.mark.xdist_group("scale")

PARALLEL = 48  # 16 at each replica


async def refused_within_a_second(client: httpx.AsyncClient, access_token: str) -> None:
    deadline = time.monotonic() + 1.0
    while (me := await client.get("/users/me", headers=bearer(access_token))).status_code != 401:
        assert time.monotonic() < deadline, (str(client.base_url), me.status_code, me.text)
        await asyncio.sleep(0.01)


def spread(clients: list[httpx.AsyncClient], count: int) -> list[httpx.AsyncClient]:
    """`count` clients taking turns: requests spread evenly over the replicas."""
    return [clients[index % len(clients)] for index in range(count)]


async def test_signing_out_everywhere_on_one_replica_ends_the_tokens_on_all(
    clients: list[httpx.AsyncClient], email: str
) -> None:
    a, b, c = clients
    await register(a, email)
    first = await sign_in(a, email)
    second = await refresh(b, first["refresh_token"])
    assert second.status_code == 200, second.text
    renewed: dict[str, Any] = second.json()
    for client in clients:  # valid everywhere before
        assert (
            await client.get("/users/me", headers=bearer(renewed["access_token"]))
        ).status_code == 200

    signed_out = await c.post("/auth/logout-all", headers=bearer(renewed["access_token"]))
    assert signed_out.status_code == 204

    # Refused by every replica within a second (each keeps what it checked until the change
    # reaches it; tests/scale/test_revocation_propagation.py measures it), refresh at once.
    for client in clients:
        for access_token in (first["access_token"], renewed["access_token"]):
            await refused_within_a_second(client, access_token)
        assert (await refresh(client, renewed["refresh_token"])).status_code == 400


async def test_one_refresh_token_replayed_at_every_replica_at_once_wins_once(
    clients: list[httpx.AsyncClient], email: str
) -> None:
    await register(clients[0], email)
    tokens = await sign_in(clients[0], email)

    responses = await asyncio.gather(
        *(refresh(client, tokens["refresh_token"]) for client in spread(clients, PARALLEL))
    )

    codes = sorted(response.status_code for response in responses)
    assert codes == [200] + [400] * (PARALLEL - 1)
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    [winner] = [r.json() for r in responses if r.status_code == 200]
    for client in clients:
        me = await client.get("/users/me", headers=bearer(winner["access_token"]))
        assert me.status_code == 200
    assert (await refresh(clients[2], winner["refresh_token"])).status_code == 200


async def test_password_guesses_at_every_replica_share_one_budget(
    clients: list[httpx.AsyncClient], email: str
) -> None:
    await register(clients[0], email)

    responses = await asyncio.gather(
        *(password_grant(client, email, "not the password") for client in spread(clients, PARALLEL))
    )

    codes = sorted(response.status_code for response in responses)
    # Counted per process, each replica would have let ACCOUNT_IP_LIMIT guesses through.
    assert codes == [400] * ACCOUNT_IP_LIMIT + [429] * (PARALLEL - ACCOUNT_IP_LIMIT)
    for client in clients:  # spent everywhere, even for the right password
        late = await password_grant(client, email, PASSWORD)
        assert late.status_code == 429
        assert int(late.headers["retry-after"]) > 0


async def test_a_provider_sign_in_begun_on_one_replica_finishes_on_another(
    clients: list[httpx.AsyncClient], standin: OIDCStandin, email: str
) -> None:
    a, b, c = clients
    authorization_url, cookies = await start(a, "acme")
    code, state = standin.approve(authorization_url, Identity(sub=email, email=email))

    response = await finish(b, "acme", code, state, cookies)

    assert response.status_code == 200, response.text
    tokens = response.json()
    me = await c.get("/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == email
    replayed = await finish(c, "acme", code, state, cookies)  # the state is spent everywhere
    assert replayed.status_code == 400


async def test_a_rotated_key_is_published_and_honoured_by_every_replica(
    clients: list[httpx.AsyncClient],
    replicas: list[ServeProcess],
    replica_settings: dict[str, str],
    email: str,
) -> None:
    a, b, c = clients
    await register(a, email)
    before = {key["kid"] for key in (await b.get("/.well-known/jwks.json")).json()["keys"]}

    rotated = run_authsvc("keys", "rotate", settings=replica_settings)
    assert rotated.returncode == 0

    # Every replica publishes the new key before any of them signs with it (a verifier that
    # fetched the JWKS meanwhile knows it), then A signs with it; tokens A signs are accepted
    # by B and C all along.
    deadline = time.monotonic() + 30
    published_everywhere: set[str] = set()
    while time.monotonic() < deadline:
        published = [
            {key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]}
            for client in clients
        ]
        tokens = await sign_in(a, email)
        kid = jwt.get_unverified_header(tokens["access_token"])["kid"]
        for client in (b, c):
            me = await client.get("/users/me", headers=bearer(tokens["access_token"]))
            assert me.status_code == 200, me.text
        if kid not in before:
            assert kid in published_everywhere, "a replica signed with a key not yet published"
            break
        published_everywhere |= set.intersection(*published) - before
        await asyncio.sleep(0.3)
    else:
        pytest.fail(f"the rotated key did not start signing: {published_everywhere}")
    assert all(replica.process.poll() is None for replica in replicas)
