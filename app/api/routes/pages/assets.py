"""The hosted pages' stylesheets: the static look and the theme made from the branding."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.api.deps import SettingsDep
from app.api.pages.branding import Branding
from app.api.pages.stylesheets import (
    CACHE_CONTROL,
    CSS_MEDIA_TYPE,
    STYLESHEET_PATH,
    THEME_PATH,
    stylesheet,
    theme_css,
)

router = APIRouter(include_in_schema=False)

# Pages link both with a fingerprint of their content (app/api/pages/stylesheets.py), so a
# browser may keep them for long.
_CACHED = {"Cache-Control": CACHE_CONTROL}


@router.get(STYLESHEET_PATH)
async def pages_stylesheet() -> Response:
    """The static look of every hosted page."""
    return Response(stylesheet(), media_type=CSS_MEDIA_TYPE, headers=_CACHED)


@router.get(THEME_PATH)
async def pages_theme(settings: SettingsDep) -> Response:
    """The brand's colours as CSS custom properties (AUTH_BRAND_*_COLOR)."""
    css = theme_css(Branding.from_settings(settings))
    return Response(css, media_type=CSS_MEDIA_TYPE, headers=_CACHED)
