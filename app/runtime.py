"""What a running service holds: one `Runtime`, opened at start-up by `open_runtime`.

The app's lifespan (`app/main.py`) opens it and keeps it on `app.state.runtime`; everything
that serves a request reaches it through `runtime_of(app)`. The command line (`app/cli/`)
opens one too, to run use cases over the same engine, hasher and rate limiter.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, cached_property
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import IPNetwork, Settings, parse_networks
from app.db import create_engine, create_session_factory
from app.mail import build_email_sender
from app.models.base import utcnow
from app.observability.metrics import AuthMetrics
from app.security.audit_hmac import AuditHmac
from app.security.encryption import Encryptor, data_encryption_setting, load_encryptor
from app.security.passwords import PasswordHasher
from app.services.common.outbox import Doorbell, Outbox
from app.services.common.rate_limits import RateLimiter
from app.services.oauth.providers import Provider, build_providers
from app.services.operations.outbox_dispatcher import OutboxDispatcher
from app.services.operations.token_state_listener import TokenStateListener
from app.services.tokens.signing_keys import SigningKeys
from app.services.tokens.token_state_cache import TokenStateCache

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from app.security.access_tokens import AccessTokenCodec


@dataclass(frozen=True)
class Runtime:
    """The long-lived resources of the service, built once and shared by every request.

    Frozen: nothing replaces a resource while the service runs. Tests that swap the clock or
    the outbound HTTP client install a copy made with `dataclasses.replace` (which builds its
    own token codec and mail outbox on first use, over the same signing keys, and shares the
    one dispatcher).
    """

    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    password_hasher: PasswordHasher
    rate_limiter: RateLimiter
    audit_hmac: AuditHmac
    # AUTH_DATA_ENCRYPTION_KEY (queued mail, ...), read on first use (`data_encryptor`): a
    # command that queues nothing never reads it, nor creates it in development.
    load_data_encryptor: Callable[[], Encryptor]
    # Rung after a commit that queued an outbox message: wakes this process's dispatcher.
    outbox_doorbell: Doorbell
    # Delivers the outbox: the app's lifespan starts and stops it; `authsvc worker` runs it.
    outbox_dispatcher: OutboxDispatcher
    oauth_providers: dict[str, Provider]
    # Talks to the social sign-in providers (token exchange, user info, discovery, keys).
    oauth_http: httpx.AsyncClient
    # The app's Prometheus metrics: its middleware records into them, GET /metrics serves them.
    metrics: AuthMetrics
    # The reverse proxies whose X-Forwarded-For is believed (AUTH_TRUSTED_PROXIES).
    trusted_proxies: tuple[IPNetwork, ...]
    # The signing key ring (AUTH_KEY_STORE), read by `load_keys` and kept current from then on.
    signing_keys: SigningKeys
    # What token checks read, kept while provably current (a revoked token is refused everywhere
    # within a second), and the listener that keeps it so: the app's lifespan runs it. On
    # SQLite, which has no channel to hear changes on, the cache is off and there is no
    # listener.
    token_state_cache: TokenStateCache = field(default_factory=TokenStateCache.disabled)
    token_state_listener: TokenStateListener | None = None
    clock: Callable[[], datetime] = utcnow

    @cached_property
    def token_codec(self) -> AccessTokenCodec:
        """Signs and verifies access tokens with `signing_keys`. Built on first use (after
        `load_keys`): the command line signs nothing, so it never needs (or creates) the
        ring."""
        from app.security.access_tokens import build_access_token_codec

        return build_access_token_codec(self.settings, self.signing_keys.provider())

    @property
    def data_encryptor(self) -> Encryptor:
        """Encrypts and decrypts data secrets at rest (AUTH_DATA_ENCRYPTION_KEY)."""
        return self.load_data_encryptor()

    @cached_property
    def mail_outbox(self) -> Outbox:
        """Where use cases queue mail, in their own transaction (`ServiceContext.outbox`)."""
        return Outbox(self.session_factory, self.load_data_encryptor, self.outbox_doorbell)

    async def load_keys(self) -> None:
        """Read the signing key ring, the audit HMAC key and the data encryption key now, so
        that a missing or unreadable key stops the service at start-up instead of failing a
        request; from then on the ring is kept current (a rotation, a staged key's time to
        sign)."""
        from app.security.keys.errors import KeyConfigurationError

        try:
            await self.signing_keys.start()
            _ = self.token_codec
        except KeyConfigurationError as error:
            # One line that says it all, ahead of the server's traceback of the failed start.
            logger.critical("cannot start: the signing keys cannot be used: %s", error)
            raise
        self.audit_hmac.load()
        _ = self.data_encryptor


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, metrics: AuthMetrics | None = None
) -> AsyncIterator[Runtime]:
    """Build the resources `settings` describe; close them on the way out, the last built
    first: the signing key watcher, the outbound HTTP client, the hasher's threads, the rate
    limiter's Redis connections, the database engine.

    `metrics` are those the app's middleware records into (`install_observability`); without
    them (the command line) the runtime gets a registry of its own that nobody reads.
    The outbox's dispatcher is built, not started: the app's lifespan and `authsvc worker`
    run it.
    """
    async with AsyncExitStack() as built:
        engine = create_engine(settings)
        built.push_async_callback(engine.dispose)
        rate_limiter = RateLimiter(settings)
        built.push_async_callback(rate_limiter.close)
        password_hasher = PasswordHasher.from_settings(settings)
        built.callback(password_hasher.close)
        oauth_http = httpx.AsyncClient(
            timeout=settings.oauth_http_timeout_seconds, follow_redirects=False
        )
        built.push_async_callback(oauth_http.aclose)
        token_state_cache = TokenStateCache.disabled()
        token_state_listener = None
        listen_url = settings.token_state_listen_url
        if listen_url is not None:
            # A connection of its own, held for LISTEN, straight to PostgreSQL.
            listener_engine = create_engine(
                settings.model_copy(update={"database_url": listen_url}), pool_size=1
            )
            built.push_async_callback(listener_engine.dispose)
            token_state_cache = TokenStateCache(settings.auth_cache_ttl_seconds)
            token_state_listener = TokenStateListener(listener_engine, token_state_cache)
        session_factory = create_session_factory(
            engine, after_commit=token_state_cache.local_commit
        )
        # The outbox's dispatcher has a connection of its own: a flood of requests holding the
        # pool does not stall mail, and delivering mail never takes a request's connection.
        dispatcher_engine = create_engine(settings, pool_size=1)
        built.push_async_callback(dispatcher_engine.dispose)
        signing_keys = SigningKeys(settings, session_factory)
        built.push_async_callback(signing_keys.close)
        metrics = metrics if metrics is not None else AuthMetrics()
        load_data_encryptor = cache(
            lambda: load_encryptor(settings, data_encryption_setting(settings))
        )
        doorbell = Doorbell()
        yield Runtime(
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            password_hasher=password_hasher,
            rate_limiter=rate_limiter,
            audit_hmac=AuditHmac(settings),
            load_data_encryptor=load_data_encryptor,
            outbox_doorbell=doorbell,
            outbox_dispatcher=OutboxDispatcher(
                settings=settings,
                session_factory=create_session_factory(dispatcher_engine),
                encryptor=load_data_encryptor,
                sender=build_email_sender(settings),
                metrics=metrics,
                doorbell=doorbell,
            ),
            oauth_providers=build_providers(settings),
            oauth_http=oauth_http,
            metrics=metrics,
            trusted_proxies=parse_networks(settings.trusted_proxies),
            signing_keys=signing_keys,
            token_state_cache=token_state_cache,
            token_state_listener=token_state_listener,
        )


def install_runtime(app: Starlette, runtime: Runtime) -> None:
    """Make `runtime` the one `app` serves requests with."""
    app.state.runtime = runtime


def runtime_of(app: Starlette) -> Runtime:
    """The runtime `app` serves requests with (installed by its lifespan)."""
    runtime: Runtime = app.state.runtime
    return runtime
