"""Swagger UI (`/docs`) and ReDoc (`/redoc`), their scripts served by this service.

FastAPI's own pages load their bundles from a CDN, so on a network without internet they stay
blank. The bundles come from the `fastapi-offline` package instead, mounted under
`/docs/assets`. `AUTH_DOCS_ENABLED` (default: development only) switches the pages and
`/openapi.json` on.
"""

from __future__ import annotations

from http import HTTPStatus
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.config import Settings

OPENAPI_URL = "/openapi.json"
SWAGGER_UI_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
# The HTML pages (they need a content security policy that lets their scripts run).
DOCS_PAGES = (SWAGGER_UI_URL, REDOC_URL, OAUTH2_REDIRECT_URL)

SWAGGER_UI_PARAMETERS: dict[str, Any] = {
    # The default asks validator.swagger.io about the schema: nothing leaves the service.
    "validatorUrl": None,
}


class DocsAssets(StaticFiles):
    """The packaged bundles, revalidated by ETag on each visit (a package upgrade changes them
    under the same name) instead of the API's blanket `no-store`; a 405 names GET and HEAD."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as error:
            if error.status_code != HTTPStatus.METHOD_NOT_ALLOWED:
                raise
            raise HTTPException(error.status_code, headers={"Allow": "GET, HEAD"}) from None

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        return response


def openapi_url(settings: Settings) -> str | None:
    """Where the app serves its OpenAPI schema, None when the docs are off."""
    return OPENAPI_URL if settings.should_serve_docs else None


def install_docs(app: FastAPI, settings: Settings) -> None:
    """Add the documentation pages and their assets to `app` when the docs are enabled.

    `app` is built with FastAPI's own pages off (`docs_url=None, redoc_url=None`) and with
    `openapi_url=openapi_url(settings)`.
    """
    if not settings.should_serve_docs:
        return
    assets = files("fastapi_offline") / "static"
    app.mount(ASSETS_URL, DocsAssets(directory=str(assets)), name="docs-assets")
    # Swagger UI's Authorize dialog sends this as the client of its password grant.
    init_oauth = {"clientId": settings.first_party_client_id}

    @app.get(SWAGGER_UI_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request.scope)
        return get_swagger_ui_html(
            openapi_url=root + OPENAPI_URL,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            init_oauth=init_oauth,
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request.scope)
        return get_redoc_html(
            openapi_url=root + OPENAPI_URL,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )


def _root_path(scope: Scope) -> str:
    # Behind a proxy that mounts the service under a prefix, the pages link below it.
    return str(scope.get("root_path", "")).rstrip("/")
