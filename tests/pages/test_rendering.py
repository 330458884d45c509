"""render_page: templates with the branding, the stylesheets and the CSRF token; autoescaped;
a context that misses a name the template needs fails loudly instead of rendering blanks."""

from __future__ import annotations

import re

import httpx
import jinja2
import pytest
from fastapi import FastAPI, Request
from starlette.responses import Response

from app.api.pages import render_error, render_page
from app.api.pages.rendering import environment
from tests.pages.conftest import page_url
from tests.pages.samples import FULL, TEMPLATES

STYLESHEET_LINKS = re.compile(r'<link rel="stylesheet" href="([^"]+)">')


@pytest.mark.parametrize("template", TEMPLATES)
async def test_every_page_renders_with_only_the_names_a_route_must_pass(
    browser: httpx.AsyncClient, template: str
) -> None:
    response = await browser.get(page_url(template, "minimal"))

    assert response.status_code == 200
    assert "<main" in response.text


@pytest.mark.parametrize(
    ("template", "missing"),
    [("login.html", "action"), ("consent.html", "scopes"), ("error.html", "message")],
)
def test_a_missing_required_name_is_an_error(template: str, missing: str) -> None:
    context = {name: value for name, value in FULL[template].items() if name != missing}
    context |= {
        "brand": {"name": "x", "logo_url": None},
        "stylesheets": {"stylesheet": "/a.css", "theme": "/b.css"},
        "csrf_token": "t",
    }

    with pytest.raises(jinja2.UndefinedError, match=missing):
        environment.get_template(template).render(context)


def test_templates_are_compiled_once() -> None:
    assert environment.get_template("login.html") is environment.get_template("login.html")


async def test_the_title_names_the_page_and_the_brand(browser: httpx.AsyncClient) -> None:
    page = await browser.get(page_url("consent.html"))

    assert "<title>Allow access · authsvc</title>" in page.text
    assert '<span class="brand-name">authsvc</span>' in page.text
    assert "<img" not in page.text


async def test_the_stylesheets_a_page_links_are_served(browser: httpx.AsyncClient) -> None:
    page = await browser.get(page_url("login.html"))

    links = STYLESHEET_LINKS.findall(page.text)
    assert [link.split("?v=")[0] for link in links] == [
        "/pages/assets/authsvc.css",
        "/pages/theme.css",
    ]
    stylesheet, theme = [await browser.get(link) for link in links]
    assert stylesheet.status_code == theme.status_code == 200
    assert ":focus-visible" in stylesheet.text
    assert "--brand-primary: #2457a6;" in theme.text


async def test_context_values_are_escaped(page_app: FastAPI, browser: httpx.AsyncClient) -> None:
    @page_app.get("/test-only/hostile")
    async def hostile(request: Request) -> Response:
        context = FULL["consent.html"] | {
            "client_name": '<script>alert("x")</script>',
            "request": '"><img src=x>',
        }
        return render_page(request, "consent.html", context)

    page = await browser.get("/test-only/hostile")

    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    assert 'value="&#34;&gt;&lt;img src=x&gt;"' in page.text


async def test_logout_leaves_out_hidden_fields_without_a_value(
    page_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    @page_app.get("/test-only/logout")
    async def logout(request: Request) -> Response:
        hidden = {"state": "xyz", "post_logout_redirect_uri": None}
        return render_page(request, "logout.html", {"action": "/logout", "hidden": hidden})

    page = await browser.get("/test-only/logout")

    assert '<input type="hidden" name="state" value="xyz">' in page.text
    assert "post_logout_redirect_uri" not in page.text


async def test_a_token_the_route_passes_is_the_form_and_the_cookie_token(
    page_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    token = "T" * 43

    @page_app.get("/test-only/with-token")
    async def with_token(request: Request) -> Response:
        return render_page(request, "login.html", FULL["login.html"] | {"csrf_token": token})

    page = await browser.get("/test-only/with-token")

    assert f'name="csrf_token" value="{token}"' in page.text
    assert page.headers["set-cookie"].startswith(f"authsvc_csrf={token};")


@pytest.mark.parametrize(
    "context",
    [
        {"csrf_token": "not-a-token"},
        {"brand": "mine"},
        {"stylesheets": "mine"},
    ],
)
async def test_names_render_page_provides_cannot_be_faked(
    page_app: FastAPI, browser: httpx.AsyncClient, context: dict[str, str]
) -> None:
    @page_app.get("/test-only/faked")
    async def faked(request: Request) -> Response:
        return render_page(request, "login.html", FULL["login.html"] | context)

    with pytest.raises(ValueError, match=r"render_page provides|csrf\.issue"):
        await browser.get("/test-only/faked")


async def test_an_error_page_has_its_status_and_a_way_back(
    page_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    @page_app.get("/test-only/error")
    async def error(request: Request) -> Response:
        return render_error(
            request,
            title="Unknown application",
            message="Nothing is registered as <that>.",
            status_code=400,
            back_url="/start",
        )

    page = await browser.get("/test-only/error")

    assert page.status_code == 400
    assert page.headers["x-frame-options"] == "DENY"
    assert "<h1>Unknown application</h1>" in page.text
    assert "Nothing is registered as &lt;that&gt;." in page.text
    assert '<a href="/start">Go back</a>' in page.text


async def test_sign_in_providers_are_links(browser: httpx.AsyncClient) -> None:
    page = await browser.get(page_url("login.html"))

    assert (
        '<a class="button secondary" href="/auth/oauth/github/authorize">Sign in with GitHub</a>'
        in page.text
    )


class TestBranded:
    @pytest.fixture
    def page_settings_overrides(self) -> dict[str, object]:
        return {
            "brand_name": "Acme & Co",
            "brand_logo_url": "http://localhost:9000/logo.png",
            "brand_primary_color": "#FFCC00",
        }

    async def test_the_logo_stands_for_the_brand_name(self, browser: httpx.AsyncClient) -> None:
        page = await browser.get(page_url("login.html"))

        assert "<title>Sign in · Acme &amp; Co</title>" in page.text
        assert (
            '<img class="brand-logo" src="http://localhost:9000/logo.png" alt="Acme &amp; Co">'
            in page.text
        )

    async def test_a_plain_http_logo_is_allowed_by_the_policy(
        self, browser: httpx.AsyncClient
    ) -> None:
        page = await browser.get(page_url("login.html"))

        policy = page.headers["content-security-policy"]
        assert "; img-src 'self' https: data: http://localhost:9000; " in policy

    async def test_the_theme_carries_the_brand_colour(self, browser: httpx.AsyncClient) -> None:
        page = await browser.get(page_url("login.html"))
        theme_link = STYLESHEET_LINKS.findall(page.text)[1]

        theme = await browser.get(theme_link)

        assert "--brand-primary: #ffcc00;" in theme.text
        # Yellow is too light for white text, and for links and focus rings on the white card.
        assert "--brand-on-primary: #000000;" in theme.text
        assert "--brand-accent-text: #111827;" in theme.text
        assert "--brand-focus: #111827;" in theme.text
