"""Application factory: the lifespan that opens the runtime, error handling, middleware, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from app.api.docs import install_docs, openapi_url
from app.api.hardening import install_hardening
from app.api.problems import install_problem_handlers
from app.api.routes import authorization, oauth, tokens, userinfo, well_known
from app.api.routes.accounts import grants, me, mfa, recovery, registration
from app.api.routes.admin import audit, permissions, roles, service_clients, users
from app.api.routes.operations import health, metrics
from app.api.routes.pages import assets as page_assets
from app.api.routes.pages import consent, sign_in, sign_out
from app.config import Settings, get_settings
from app.observability import install_observability
from app.runtime import install_runtime, open_runtime
from app.schema_migrations import upgrade_to_head

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app. Without `settings`, they are read from the environment."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.should_auto_migrate:
            # Alembic runs its own event loop, so it must run on a worker thread.
            await anyio.to_thread.run_sync(upgrade_to_head, settings.database_url)
        async with open_runtime(settings, metrics=app_metrics) as runtime:
            await runtime.load_keys()  # a missing key stops the start, not a sign-in
            install_runtime(app, runtime)
            # Every serve process delivers the outbox; on shutdown (after the requests in
            # flight), deliveries under way finish or their messages are handed back.
            runtime.outbox_dispatcher.start()
            if runtime.token_state_listener is not None:
                runtime.token_state_listener.start()
            try:
                yield
            finally:
                if runtime.token_state_listener is not None:
                    await runtime.token_state_listener.stop()
                await runtime.outbox_dispatcher.stop()

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
    install_problem_handlers(app)
    install_hardening(app, settings)
    # Built with the app, as its middleware records into them; the lifespan above hands them
    # to the runtime, which serves them at GET /metrics.
    app_metrics = install_observability(app, settings)
    install_docs(app, settings)
    for operations in (health, metrics):
        app.include_router(operations.router)
    for accounts in (registration, recovery, me, mfa, grants):
        app.include_router(accounts.router)
    app.include_router(tokens.router)
    app.include_router(oauth.router)
    app.include_router(userinfo.router)
    app.include_router(well_known.router)
    app.include_router(authorization.router)
    for page in (page_assets, sign_in, consent, sign_out):
        app.include_router(page.router)
    for admin in (users, roles, permissions, service_clients, audit):
        app.include_router(admin.router)
    return app
