"""The token-state cache on its own (no database): it answers only while the channel proves it
current, drops what each notification names, and never keeps an answer read before an
invalidation that arrived while it was being read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.repositories.accounts.credential_checks import (
    ClientTokenState,
    CurrentUser,
    UserTokenState,
)
from app.services.tokens.token_state_cache import TokenStateCache

USER = uuid.UUID(int=1)
SESSION = uuid.UUID(int=2)
OTHER_SESSION = uuid.UUID(int=3)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state(version: int = 0, *, revoked: bool = False) -> UserTokenState:
    user = CurrentUser(
        id=USER,
        email="ada@example.com",
        username=None,
        full_name=None,
        is_active=True,
        is_verified=True,
        is_superuser=False,
        roles=[],
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return UserTokenState(
        user=user,
        token_version=version,
        session_revoked_at=datetime(2026, 1, 2, tzinfo=UTC) if revoked else None,
    )


def current_cache(clock: Clock, ttl: float = 30) -> TokenStateCache:
    cache = TokenStateCache(ttl, clock=clock)
    cache.heartbeat(clock.now)
    return cache


def stored(cache: TokenStateCache, session_id: uuid.UUID = SESSION) -> None:
    cache.store_user_state(USER, session_id, state(), cache.generation)


def test_nothing_is_answered_before_the_channel_proves_it_is_current() -> None:
    clock = Clock()
    cache = TokenStateCache(30, clock=clock)

    cache.store_user_state(USER, SESSION, state(), cache.generation)

    assert cache.user_state(USER, SESSION) is None
    assert not cache.is_current


def test_a_current_cache_answers_what_it_stored() -> None:
    clock = Clock()
    cache = current_cache(clock)
    stored(cache)

    assert cache.user_state(USER, SESSION) == state()


def test_a_session_notification_drops_that_session_only() -> None:
    clock = Clock()
    cache = current_cache(clock)
    stored(cache)
    stored(cache, OTHER_SESSION)

    cache.invalidate(f"session:{SESSION}")

    assert cache.user_state(USER, SESSION) is None
    assert cache.user_state(USER, OTHER_SESSION) is not None


def test_a_user_notification_drops_every_session_and_the_permissions_of_the_user() -> None:
    clock = Clock()
    cache = current_cache(clock)
    stored(cache)
    stored(cache, OTHER_SESSION)
    cache.store_permissions(USER, frozenset({"users:read"}), cache.generation)

    cache.invalidate(f"user:{USER}")

    assert cache.user_state(USER, SESSION) is None
    assert cache.user_state(USER, OTHER_SESSION) is None
    assert cache.permissions(USER) is None


def test_a_client_notification_drops_that_clients_tokens() -> None:
    clock = Clock()
    cache = current_cache(clock)
    for client_id, jti in (("billing", "jti-1"), ("other", "jti-2")):
        cache.store_client_state(
            client_id, jti, ClientTokenState(True, ["a"], False), cache.generation
        )

    cache.invalidate("client:billing")

    assert cache.client_state("billing", "jti-1") is None
    assert cache.client_state("other", "jti-2") is not None


def test_all_and_unknown_notifications_drop_everything() -> None:
    clock = Clock()
    cache = current_cache(clock)
    for payload in ("all", "something-new:42"):
        stored(cache)
        cache.invalidate(payload)
        assert cache.user_state(USER, SESSION) is None


def test_an_answer_read_before_an_invalidation_is_not_kept() -> None:
    clock = Clock()
    cache = current_cache(clock)
    read_began = cache.generation

    cache.invalidate(f"session:{SESSION}")  # committed while the read was under way
    cache.store_user_state(USER, SESSION, state(), read_began)

    assert cache.user_state(USER, SESSION) is None


def test_without_a_recent_heartbeat_nothing_is_answered_and_everything_is_forgotten() -> None:
    clock = Clock()
    cache = current_cache(clock)
    stored(cache)

    clock.now += 1.0  # no heartbeat for longer than MAX_LAG: the listener is behind or gone
    assert cache.user_state(USER, SESSION) is None
    cache.heartbeat(clock.now)

    assert cache.user_state(USER, SESSION) is None  # not brought back by the next heartbeat


def test_a_lost_channel_answers_nothing_until_the_next_heartbeat() -> None:
    clock = Clock()
    cache = current_cache(clock)
    stored(cache)

    cache.channel_lost()

    assert cache.user_state(USER, SESSION) is None
    cache.heartbeat(clock.now)
    stored(cache)
    assert cache.user_state(USER, SESSION) is not None


def test_entries_live_at_most_the_ttl() -> None:
    clock = Clock()
    cache = current_cache(clock, ttl=5)
    stored(cache)

    for _ in range(12):  # heartbeats keep the cache current while time passes
        clock.now += 0.5
        cache.heartbeat(clock.now)

    assert cache.user_state(USER, SESSION) is None


def test_a_disabled_cache_never_answers() -> None:
    cache = TokenStateCache.disabled()
    cache.heartbeat(0)
    cache.store_user_state(USER, SESSION, state(), cache.generation)

    assert cache.user_state(USER, SESSION) is None


# A read begins (capturing the generation and the database's state at that moment), the
# database changes and its notification is delivered, reads finish (storing what they read),
# and checks ask the cache: in any order.
Step = st.one_of(
    st.just(("begin",)),
    st.just(("revoke",)),
    st.just(("deliver",)),
    st.tuples(st.just("finish"), st.integers(min_value=0, max_value=5)),
    st.just(("check",)),
    st.just(("heartbeat",)),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(Step, min_size=4, max_size=30))
# The race the generations exist for: a read under way while the revocation commits.
@example([("begin",), ("revoke",), ("deliver",), ("finish", 0), ("check",)])
def test_no_interleaving_answers_active_for_a_revoked_session_once_its_notice_arrived(
    steps: list[tuple[object, ...]],
) -> None:
    clock = Clock()
    cache = current_cache(clock)
    revoked_in_database = False
    undelivered = 0  # committed revocations whose notification has not arrived yet
    reads: list[tuple[int, UserTokenState]] = []
    for step in steps:
        match step:
            case ("begin",):
                reads.append((cache.generation, state(revoked=revoked_in_database)))
            case ("revoke",):
                revoked_in_database, undelivered = True, undelivered + 1
            case ("deliver",) if undelivered:
                cache.invalidate(f"session:{SESSION}")
                undelivered -= 1
            case ("finish", int(index)) if reads:
                generation, read = reads.pop(index % len(reads))
                cache.store_user_state(USER, SESSION, read, generation)
            case ("heartbeat",):
                clock.now += 0.1
                cache.heartbeat(clock.now)
            case ("check",):
                answer = cache.user_state(USER, SESSION)
                if revoked_in_database and undelivered == 0 and answer is not None:
                    assert answer.session_revoked_at is not None, steps
