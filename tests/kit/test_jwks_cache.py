"""The JWKS cache: bounded refetches, shared requests, surviving an outage, key rotation.

Requests are counted by a transport that forwards each one to the live service."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import jwt
import pytest

from app.config import Settings
from app.security.keys.directory import KeyDirectory
from authsvc_kit import InvalidToken
from tests.kit.conftest import CountingTransport, ManualClock, verifier_for
from tests.support.flows import register, sign_in
from tests.support.live_server import LiveService, start_service

JWKS_PATH = "/.well-known/jwks.json"


def with_kid(live: LiveService, kid: str) -> str:
    """A token signed by the service's key but naming another kid."""
    return live.sign(jwt.decode(live.mint(), options={"verify_signature": False}), kid=kid)


async def test_keys_are_fetched_once_and_then_served_from_the_cache(
    jwks_service: LiveService,
    http: httpx.AsyncClient,
    counting: CountingTransport,
    kit_clock: ManualClock,
) -> None:
    verifier = verifier_for(jwks_service, http, kit_clock)

    for _ in range(20):
        await verifier.verify(jwks_service.mint())

    assert counting.requests[JWKS_PATH] == 1


async def test_concurrent_first_verifications_share_one_request(
    jwks_service: LiveService,
    http: httpx.AsyncClient,
    counting: CountingTransport,
    kit_clock: ManualClock,
) -> None:
    verifier = verifier_for(jwks_service, http, kit_clock)
    tokens = [jwks_service.mint() for _ in range(20)]

    claims = await asyncio.gather(*(verifier.verify(token) for token in tokens))

    assert len(claims) == 20
    assert counting.requests[JWKS_PATH] == 1


async def test_garbage_kids_cause_at_most_one_refetch_per_interval(
    jwks_service: LiveService,
    http: httpx.AsyncClient,
    counting: CountingTransport,
    kit_clock: ManualClock,
) -> None:
    verifier = verifier_for(jwks_service, http, kit_clock, min_refetch_interval=5)
    await verifier.verify(jwks_service.mint())
    assert counting.requests[JWKS_PATH] == 1

    async def flood() -> None:
        garbage = [with_kid(jwks_service, secrets.token_urlsafe(32)) for _ in range(25)]
        results = await asyncio.gather(
            *(verifier.verify(token) for token in garbage), return_exceptions=True
        )
        assert all(isinstance(r, InvalidToken) and r.reason == "unknown_kid" for r in results)
        for token in garbage[:10]:  # and one after another
            with pytest.raises(InvalidToken, match="unknown_kid"):
                await verifier.verify(token)

    await flood()  # within the interval after the first fetch: no request at all
    assert counting.requests[JWKS_PATH] == 1

    kit_clock.advance(5)
    await flood()  # one refetch, shared by the concurrent ones, none for the later ones
    assert counting.requests[JWKS_PATH] == 2

    kit_clock.advance(4.9)
    await flood()
    assert counting.requests[JWKS_PATH] == 2

    kit_clock.advance(0.1)
    await flood()
    assert counting.requests[JWKS_PATH] == 3
    assert verifier.jwks.fetch_count == 3
    assert (await verifier.verify(jwks_service.mint())).subject  # the real key still works


async def test_the_key_set_is_refreshed_after_its_max_age(
    jwks_service: LiveService,
    http: httpx.AsyncClient,
    counting: CountingTransport,
    kit_clock: ManualClock,
) -> None:
    verifier = verifier_for(jwks_service, http, kit_clock, max_age=300)
    await verifier.verify(jwks_service.mint())

    kit_clock.advance(299)
    await verifier.verify(jwks_service.mint())
    assert counting.requests[JWKS_PATH] == 1

    kit_clock.advance(1)
    await verifier.verify(jwks_service.mint())
    assert counting.requests[JWKS_PATH] == 2


async def test_cached_keys_keep_working_while_the_service_is_down(
    jwks_service: LiveService,
    http: httpx.AsyncClient,
    counting: CountingTransport,
    kit_clock: ManualClock,
) -> None:
    verifier = verifier_for(jwks_service, http, kit_clock, max_age=300, min_refetch_interval=5)
    token = jwks_service.mint()
    unknown = with_kid(jwks_service, "not-published")
    await verifier.verify(token)

    await jwks_service.stop()
    kit_clock.advance(600)  # stale: the next verification tries to refresh, and fails

    assert (await verifier.verify(token)).subject
    assert counting.requests[JWKS_PATH] == 2
    with pytest.raises(InvalidToken, match="unknown_kid"):
        await verifier.verify(unknown)
    # Failed attempts are rate-limited like successful ones: no request per verification.
    for _ in range(10):
        assert (await verifier.verify(token)).subject
    assert counting.requests[JWKS_PATH] == 2
    kit_clock.advance(5)
    assert (await verifier.verify(token)).subject
    assert counting.requests[JWKS_PATH] == 3


@pytest.fixture
def own_keys_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The worker's key ring is shared by its tests: rotate a ring of this test's own."""
    return settings.model_copy(update={"keys_dir": tmp_path / "ring"})


async def test_a_key_rotation_is_picked_up_while_the_consumer_runs(
    own_keys_settings: Settings,
    reset_database: object,
    http: httpx.AsyncClient,
    counting: CountingTransport,
    kit_clock: ManualClock,
) -> None:
    live = await start_service(own_keys_settings)
    try:
        async with httpx.AsyncClient(base_url=live.url) as service:
            await register(service)
            old_token = (await sign_in(service))["access_token"]
            verifier = verifier_for(live, http, kit_clock, min_refetch_interval=5)
            assert (await verifier.verify(old_token)).subject
            old_kid = jwt.get_unverified_header(old_token)["kid"]

            rotation = KeyDirectory(own_keys_settings.keys_dir).rotate(
                "RS256", retire_for_seconds=own_keys_settings.access_token_ttl_seconds + 60
            )
            live.codec.keys.reload()  # what the service does by itself within ~5 s
            new_token = (await sign_in(service))["access_token"]
            kit_clock.advance(5)  # the consumer's last fetch was just now

            new_claims = await verifier.verify(new_token)
            old_claims = await verifier.verify(old_token)
    finally:
        await live.stop()
        await reset_database()  # type: ignore[operator]

    assert jwt.get_unverified_header(new_token)["kid"] == rotation.current.kid != old_kid
    assert rotation.retired.kid == old_kid
    assert new_claims.subject == old_claims.subject
    assert counting.requests[JWKS_PATH] == 2
    assert set(verifier.jwks.keys) == {rotation.current.kid, old_kid}
