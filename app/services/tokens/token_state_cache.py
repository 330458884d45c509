"""What token checks read, kept in process for a short while, and dropped the moment anything it
holds changes anywhere: the revocation-aware cache of the bearer path.

A token check reads the session, user, token version and roles behind an access token (and a
user's permissions, and a service client's state). This cache keeps those answers for at most
`AUTH_AUTH_CACHE_TTL_SECONDS` (a cap; entries normally die of invalidation), so a check is a
signature and a dictionary lookup, not a database round trip.

The guarantee is that a revoked token is refused everywhere within a second of the revoking
commit. It rests on the database: triggers (migration 0015) `NOTIFY authsvc_token_state` for
every committed change a check reads, delivered at commit and never for a rolled-back change, and
every replica's listener (`token_state_listener`) hands them to `invalidate`. The cache is used
only while the listener can prove it is current: it sends itself a heartbeat through the same
channel every `HEARTBEAT_INTERVAL`, and PostgreSQL delivers notifications in commit order, so a
heartbeat sent at `t` and received means every change committed before `t` has arrived. Past
`MAX_LAG` without one (the connection is down, frozen, behind PgBouncer, or the event loop is
starved), every check goes to the database until the listener catches up again: a stale "active"
answer is never given because a message was lost.

A read racing an invalidation must not put back what the invalidation removed: `generation`
moves on with every invalidation and health change, and `store_*` keeps an answer only when no
invalidation arrived since the read began.

A replica sees its own changes at once (read-your-writes): after each commit of this process
(`local_commit`), the cache answers nothing until a heartbeat sent after that commit is back,
which the listener sends at once; by then the commit's own notifications have been applied.
So a client that signs out and retries on the same replica is refused, not served from the
cache for the millisecond the notification takes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from app.repositories.accounts.credential_checks import ClientTokenState, UserTokenState

# How often the listener sends itself a heartbeat, and how old the last one received may be
# for the cache to answer (a change is seen within MAX_LAG plus the time to deliver it).
HEARTBEAT_INTERVAL = 0.2
MAX_LAG = 0.75
# Bounds memory under a flood of distinct tokens; when full, new answers are not kept.
MAX_ENTRIES = 200_000

V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    stored_at: float


class _Table(Generic[V]):
    """Entries by key, each tagged with the invalidation keys that drop it."""

    def __init__(self) -> None:
        self.entries: dict[Hashable, _Entry[V]] = {}
        self.tags: dict[str, set[Hashable]] = {}

    def get(self, key: Hashable, now: float, ttl: float) -> V | None:
        entry = self.entries.get(key)
        if entry is None or now - entry.stored_at > ttl:
            return None
        return entry.value

    def put(self, key: Hashable, value: V, now: float, tags: tuple[str, ...]) -> None:
        self.entries[key] = _Entry(value, now)
        for tag in tags:
            self.tags.setdefault(tag, set()).add(key)

    def drop(self, tag: str) -> None:
        for key in self.tags.pop(tag, ()):
            self.entries.pop(key, None)

    def clear(self) -> None:
        self.entries.clear()
        self.tags.clear()


class TokenStateCache:
    """See the module. One per process; not thread-safe (the event loop's thread only)."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_lag: float = MAX_LAG,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.ttl = ttl_seconds
        self.clock = clock
        self.max_lag = max_lag
        self.max_entries = max_entries
        self.generation = 0
        # When the last heartbeat received was sent (clock time); None: not listening.
        self._current_as_of: float | None = None
        # The last commit of this process: answers wait for a heartbeat sent after it.
        self._last_local_commit = float("-inf")
        # Called after a local commit, to have a heartbeat sent at once (the listener's).
        self.on_local_commit: Callable[[], None] = lambda: None
        self._users: _Table[UserTokenState] = _Table()
        self._permissions: _Table[frozenset[str]] = _Table()
        self._clients: _Table[ClientTokenState] = _Table()

    @classmethod
    def disabled(cls) -> TokenStateCache:
        """A cache that never answers (no channel to keep it current: SQLite)."""
        return cls(0)

    # --- health -------------------------------------------------------------------------

    @property
    def is_current(self) -> bool:
        """Whether answers may be given: the channel proved, recently enough, that every
        change committed up to then has been applied."""
        if self.ttl <= 0 or self._current_as_of is None:
            return False
        if self.clock() - self._current_as_of > self.max_lag:
            self._forget_everything()  # fell behind: what is held may miss an invalidation
            self._current_as_of = None
            return False
        # This process's last commit's notifications may not have arrived yet.
        return self._current_as_of >= self._last_local_commit

    def local_commit(self) -> None:
        """This process committed a transaction: its changes must be seen by the next check
        here, not a millisecond later."""
        self._last_local_commit = self.clock()
        self.on_local_commit()

    def heartbeat(self, sent_at: float) -> None:
        """A heartbeat sent at `sent_at` (clock time) came back through the channel."""
        if self._current_as_of is None:
            self._forget_everything()  # nothing kept from before the gap is trusted
        if self._current_as_of is None or sent_at > self._current_as_of:
            self._current_as_of = sent_at

    def channel_lost(self) -> None:
        """The listener lost its connection: answer nothing until it is back and current."""
        self._current_as_of = None
        self._forget_everything()

    # --- invalidation -------------------------------------------------------------------

    def invalidate(self, payload: str) -> None:
        """Apply one notification: `session:<id>`, `user:<id>`, `client:<client_id>`, or
        `all` (anything else is taken as `all`)."""
        self.generation += 1
        kind, _, key = payload.partition(":")
        if kind in {"session", "user"} and key:
            tag = f"{kind}:{key}"
            self._users.drop(tag)
            self._permissions.drop(tag)
        elif kind == "client" and key:
            self._clients.drop(f"client:{key}")
        else:
            self._forget_everything()

    def _forget_everything(self) -> None:
        self.generation += 1
        self._users.clear()
        self._permissions.clear()
        self._clients.clear()

    # --- answers ------------------------------------------------------------------------

    def user_state(self, user_id: uuid.UUID, session_id: uuid.UUID) -> UserTokenState | None:
        if not self.is_current:
            return None
        return self._users.get((user_id, session_id), self.clock(), self.ttl)

    def store_user_state(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        state: UserTokenState,
        read_generation: int,
    ) -> None:
        if self._may_store(read_generation, self._users):
            tags = (f"user:{user_id}", f"session:{session_id}")
            self._users.put((user_id, session_id), state, self.clock(), tags)

    def permissions(self, user_id: uuid.UUID) -> frozenset[str] | None:
        if not self.is_current:
            return None
        return self._permissions.get(user_id, self.clock(), self.ttl)

    def store_permissions(
        self, user_id: uuid.UUID, permissions: frozenset[str], read_generation: int
    ) -> None:
        if self._may_store(read_generation, self._permissions):
            self._permissions.put(user_id, permissions, self.clock(), (f"user:{user_id}",))

    def client_state(self, client_id: str, jti: str) -> ClientTokenState | None:
        if not self.is_current:
            return None
        return self._clients.get((client_id, jti), self.clock(), self.ttl)

    def store_client_state(
        self, client_id: str, jti: str, state: ClientTokenState, read_generation: int
    ) -> None:
        if self._may_store(read_generation, self._clients):
            self._clients.put((client_id, jti), state, self.clock(), (f"client:{client_id}",))

    def _may_store(self, read_generation: int, table: _Table[V]) -> bool:
        # An invalidation (or a gap in the channel) since the read began may concern what was
        # read: keeping it could bring back a revoked session.
        return (
            read_generation == self.generation
            and self.is_current
            and len(table.entries) < self.max_entries
        )
