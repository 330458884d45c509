"""Application factory: settings, database lifespan, error handling, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
from fastapi import FastAPI

from app.api.docs import install_docs, openapi_url
from app.api.hardening import install_hardening
from app.api.problems import install_problem_handlers
from app.api.routes import oauth, tokens, well_known
from app.api.routes.accounts import me, recovery, registration
from app.api.routes.admin import audit, permissions, roles, service_clients, users
from app.api.routes.operations import health, metrics
from app.config import Settings, get_settings
from app.db import create_engine, create_session_factory
from app.mail import MailDispatcher, build_email_sender
from app.models.base import utcnow
from app.observability import install_observability
from app.schema_migrations import upgrade_to_head
from app.security.access_tokens import build_access_token_codec
from app.security.audit_hmac import AuditHmac
from app.security.passwords import PasswordHasher
from app.services.common.rate_limits import RateLimiter
from app.services.oauth.providers import build_providers

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app. Without `settings`, they are read from the environment."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.should_auto_migrate:
            # Alembic runs its own event loop, so it must run on a worker thread.
            await anyio.to_thread.run_sync(upgrade_to_head, settings.database_url)
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        app.state.clock = utcnow
        app.state.token_codec = build_access_token_codec(settings)
        app.state.password_hasher = PasswordHasher.from_settings(settings)
        app.state.audit_hmac = AuditHmac(settings)
        app.state.audit_hmac.load()  # a missing key stops the start, not a failed sign-in
        app.state.rate_limiter = RateLimiter(settings)
        app.state.mail_dispatcher = MailDispatcher(
            build_email_sender(settings), attempts=settings.email_send_attempts
        )
        app.state.oauth_providers = build_providers(settings)
        app.state.oauth_http = httpx.AsyncClient(
            timeout=settings.oauth_http_timeout_seconds, follow_redirects=False
        )
        try:
            yield
        finally:
            await app.state.oauth_http.aclose()
            app.state.password_hasher.close()
            await app.state.rate_limiter.close()
            await engine.dispose()

    app = FastAPI(
        title="authsvc",
        version="0.1.0",
        summary="Users, OAuth2 tokens, JWKS, introspection and RBAC for your services.",
        lifespan=lifespan,
        openapi_url=openapi_url(settings),
        # Served by install_docs from packaged assets, not FastAPI's CDN-loading pages.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    install_hardening(app, settings)
    install_observability(app, settings)
    install_docs(app, settings)
    for operations in (health, metrics):
        app.include_router(operations.router)
    for accounts in (registration, recovery, me):
        app.include_router(accounts.router)
    app.include_router(tokens.router)
    app.include_router(oauth.router)
    app.include_router(well_known.router)
    for admin in (users, roles, permissions, service_clients, audit):
        app.include_router(admin.router)
    return app
