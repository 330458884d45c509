"""A throwaway app for the hosted pages' toolkit: the service's hardening and problem mapping,
the page asset routes, and test-only routes that render each page and check a form's CSRF token.

No database: the pages read nothing but the settings, so the app carries a stand-in runtime
holding only those.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, Response

from app.api.hardening import install_hardening
from app.api.pages import csrf
from app.api.pages.rendering import render_error, render_page
from app.api.problems import install_problem_handlers
from app.api.routes.pages import assets
from app.config import Settings
from tests.pages.samples import VARIANTS

FORM_URL = "/test-only/form"
UNHANDLED_FORM_URL = "/test-only/unhandled-form"


def page_url(template: str, variant: str = "full") -> str:
    return f"/test-only/pages/{template}?variant={variant}"


def build_page_app(settings: Settings) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_hardening(app, settings)
    app.state.runtime = SimpleNamespace(settings=settings)
    app.include_router(assets.router)

    @app.get("/test-only/pages/{template}")
    async def page(request: Request, template: str, variant: str = "full") -> Response:
        return render_page(request, template, VARIANTS[variant][template])

    @app.post(FORM_URL)
    async def form(request: Request) -> Response:
        # What a page route does with a form POST: check the token first, answer a 403 page.
        value = (await request.form()).get(csrf.FORM_FIELD)
        try:
            csrf.verify(request, value if isinstance(value, str) else None)
        except csrf.CsrfRejected as rejected:
            return render_error(
                request, title="Form expired", message=rejected.detail, status_code=403
            )
        return PlainTextResponse("accepted")

    @app.post(UNHANDLED_FORM_URL)
    async def unhandled_form(request: Request) -> Response:
        value = (await request.form()).get(csrf.FORM_FIELD)
        csrf.verify(request, value if isinstance(value, str) else None)
        return PlainTextResponse("accepted")

    return app


@pytest.fixture
def page_settings_overrides() -> dict[str, object]:
    """Override in a test module to change the settings of `page_app`."""
    return {}


@pytest.fixture
def page_settings(page_settings_overrides: dict[str, object]) -> Settings:
    return Settings(_env_file=None, **page_settings_overrides)  # type: ignore[arg-type]


@pytest.fixture
def page_app(page_settings: Settings) -> FastAPI:
    return build_page_app(page_settings)


@pytest.fixture
async def browser(page_app: FastAPI, page_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `page_app` at the service's public URL, keeping cookies like a browser."""
    transport = httpx.ASGITransport(app=page_app)
    async with httpx.AsyncClient(transport=transport, base_url=page_settings.public_url) as client:
        yield client
