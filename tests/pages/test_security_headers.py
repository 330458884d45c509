"""Every hosted page carries its own strict policy, which the service-wide headers do not
override; `form_action_source` opens `form-action` to exactly a client's redirect target."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import Response

from app.api.pages import form_action_source, render_page
from app.api.pages.security_headers import page_security_headers
from tests.pages.conftest import page_url
from tests.pages.samples import FULL, TEMPLATES

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@pytest.mark.parametrize("template", TEMPLATES)
async def test_every_page_has_the_page_security_headers(
    browser: httpx.AsyncClient, template: str
) -> None:
    response = await browser.get(page_url(template))

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == PAGE_CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "same-origin"
    # The service-wide ones are still added.
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_consent_page_may_post_towards_the_clients_redirect_target(
    page_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    @page_app.get("/test-only/consent")
    async def consent(request: Request) -> Response:
        sources = [form_action_source(uri) for uri in ("https://app.example/cb", "com.app:/cb")]
        return render_page(
            request, "consent.html", FULL["consent.html"], form_action_sources=sources
        )

    response = await browser.get("/test-only/consent")

    policy = response.headers["content-security-policy"]
    assert "; form-action 'self' https://app.example com.app:; " in policy


@pytest.mark.parametrize(
    ("redirect_uri", "source"),
    [
        ("https://app.example/callback?x=1#frag", "https://app.example"),
        ("https://App.Example:443/cb", "https://app.example"),
        ("https://app.example:8443/cb", "https://app.example:8443"),
        ("http://127.0.0.1:51234/cb", "http://127.0.0.1:51234"),
        ("http://localhost/cb", "http://localhost"),
        ("http://[::1]:8080/cb", "http://[::1]:8080"),
        ("https://user:pass@app.example/cb", "https://app.example"),
        ("com.example.app:/oauth2redirect", "com.example.app:"),
        ("com.example.app://callback", "com.example.app:"),
        ("Com.Example.App:/cb", "com.example.app:"),
    ],
)
def test_a_redirect_uri_becomes_its_origin_or_scheme(redirect_uri: str, source: str) -> None:
    assert form_action_source(redirect_uri) == source


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "/relative/path",
        "app.example/cb",
        "https:///no-host",
        "https://app.example:99999/cb",
        "javascript:alert(1)",
        "data:text/html,hi",
        "https://app.example;script-src *",
        "https://app .example/cb",
    ],
)
def test_a_uri_without_a_safe_source_is_refused(redirect_uri: str) -> None:
    with pytest.raises(ValueError, match="CSP"):
        form_action_source(redirect_uri)


@pytest.mark.parametrize(
    "source",
    ["'unsafe-inline'", "*", "https://a.example; script-src *", "https:", "data:", ""],
)
def test_only_origins_and_private_schemes_reach_the_policy(source: str) -> None:
    """render_page checks what a route hands it, not only what form_action_source made."""
    with pytest.raises(ValueError, match="not a CSP origin or private-use scheme source"):
        page_security_headers(form_action_sources=[source])
