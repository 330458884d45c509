"""Rendering the hosted pages: one Jinja2 environment, and `render_page`, which adds what every
page carries (branding, stylesheets, the CSRF token and its cookie, the security headers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from app.api.pages import csrf
from app.api.pages.branding import Branding
from app.api.pages.security_headers import csp_source, page_security_headers
from app.api.pages.stylesheets import stylesheet_links
from app.runtime import runtime_of

# Built once per process: templates are compiled on first use and kept (auto_reload off, so
# no file is looked at again). StrictUndefined turns a misspelt context name into an error
# instead of an empty string on the page.
environment = Environment(
    loader=PackageLoader("app.api.pages", "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True),
    undefined=StrictUndefined,
    auto_reload=False,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Names render_page puts in every template's context, which a route must not pass. It fills in
# `csrf_token` too, unless the route passes one (from csrf.issue): it then sets that one's cookie.
_PROVIDED = frozenset({"brand", "stylesheets"})


def render_page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    form_action_sources: Sequence[str] = (),
) -> HTMLResponse:
    """`template` rendered with `context`, as an HTML response with the page security headers.

    Adds to the context `brand` (the Branding), `stylesheets` (their links) and `csrf_token`
    (unless given: the token of `csrf.issue`), and sets the CSRF cookie to that token.
    `form_action_sources` are CSP sources (`form_action_source`) the page's forms may lead to
    beyond this service: the redirect after the consent POST.
    """
    reserved = _PROVIDED.intersection(context)
    if reserved:
        raise ValueError(f"render_page provides {sorted(reserved)}; do not pass them")
    settings = runtime_of(request.app).settings
    branding = Branding.from_settings(settings)
    token = context.get(csrf.FORM_FIELD) or csrf.issue(request)
    if not csrf.is_well_formed(token):
        raise ValueError("csrf_token is not a token csrf.issue made")
    body = environment.get_template(template).render(
        {
            **context,
            "brand": branding,
            "stylesheets": stylesheet_links(branding, request.scope.get("root_path", "")),
            csrf.FORM_FIELD: token,
        }
    )
    headers = page_security_headers(
        form_action_sources=form_action_sources, image_sources=_logo_sources(branding)
    )
    response = HTMLResponse(body, status_code=status_code, headers=headers)
    csrf.set_cookie(request, response, token)
    return response


def render_error(
    request: Request,
    *,
    title: str,
    message: str,
    status_code: int,
    back_url: str | None = None,
) -> HTMLResponse:
    """The error page (`error.html`): `title` as its heading, `message` as plain text, and a
    link back to `back_url` when given."""
    return render_page(
        request,
        "error.html",
        {"title": title, "message": message, "back_url": back_url},
        status_code=status_code,
    )


def render_csrf_refusal(request: Request, *, back_url: str | None = None) -> HTMLResponse:
    """The 403 page of a form POST that `csrf.verify` refused: nothing was done."""
    return render_error(
        request,
        title="This page expired",
        message="The form was out of date or came from another site. Go back and try again.",
        status_code=403,
        back_url=back_url,
    )


def _logo_sources(branding: Branding) -> tuple[str, ...]:
    # `img-src 'self' https: data:` covers every logo but a plain-http one (the settings allow
    # those on loopback only, for development).
    if branding.logo_url is not None and urlsplit(branding.logo_url).scheme == "http":
        return (csp_source(branding.logo_url),)
    return ()
