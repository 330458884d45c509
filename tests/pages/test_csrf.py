"""The hosted pages' forms accept a POST only with the page's CSRF token, from this service."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.pages.conftest import FORM_URL, UNHANDLED_FORM_URL, page_url

TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def open_form(browser: httpx.AsyncClient) -> str:
    """Load the sign-in page like a browser: its cookie lands in the jar; returns the token
    of its form."""
    page = await browser.get(page_url("login.html"))
    assert page.status_code == 200
    match = TOKEN_FIELD.search(page.text)
    assert match is not None
    return match.group(1)


async def test_the_form_with_its_token_is_accepted(browser: httpx.AsyncClient) -> None:
    token = await open_form(browser)

    response = await browser.post(
        FORM_URL,
        data={"csrf_token": token},
        headers={"Origin": "http://localhost:8000", "Sec-Fetch-Site": "same-origin"},
    )

    assert response.status_code == 200
    assert response.text == "accepted"


async def test_a_browser_without_origin_or_fetch_metadata_is_accepted(
    browser: httpx.AsyncClient,
) -> None:
    token = await open_form(browser)

    response = await browser.post(FORM_URL, data={"csrf_token": token})

    assert response.text == "accepted"


async def test_every_page_of_a_visit_carries_the_same_token(browser: httpx.AsyncClient) -> None:
    """A second tab (or the MFA step after sign-in) must not void the first tab's form."""
    first = await open_form(browser)
    second = await open_form(browser)

    assert first == second
    assert (await browser.post(FORM_URL, data={"csrf_token": first})).text == "accepted"


async def test_a_malformed_cookie_is_replaced(browser: httpx.AsyncClient) -> None:
    page = await browser.get(
        page_url("login.html"), headers={"Cookie": "authsvc_csrf=chosen-by-someone-else"}
    )

    match = TOKEN_FIELD.search(page.text)
    assert match is not None
    assert match.group(1) != "chosen-by-someone-else"
    assert page.headers["set-cookie"].startswith(f"authsvc_csrf={match.group(1)};")


async def test_the_cookie_is_httponly_strict_and_host_wide(browser: httpx.AsyncClient) -> None:
    page = await browser.get(page_url("login.html"))

    cookie = page.headers["set-cookie"]
    assert cookie.startswith("authsvc_csrf=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=strict"} <= attributes
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    assert not any(
        attribute.startswith(("domain", "max-age", "expires")) for attribute in attributes
    )


async def rejection(response: httpx.Response) -> str:
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Form expired</h1>" in response.text
    return response.text


async def test_a_post_without_the_cookie_is_rejected(browser: httpx.AsyncClient) -> None:
    token = await open_form(browser)
    browser.cookies.clear()

    page = await rejection(await browser.post(FORM_URL, data={"csrf_token": token}))

    assert "sent from another site" in page


async def test_a_post_without_the_field_is_rejected(browser: httpx.AsyncClient) -> None:
    await open_form(browser)

    await rejection(await browser.post(FORM_URL, data={"username": "ann"}))
    await rejection(await browser.post(FORM_URL, data={"csrf_token": ""}))


async def test_a_token_other_than_the_cookie_is_rejected(browser: httpx.AsyncClient) -> None:
    token = await open_form(browser)
    other = ("A" if token[0] != "A" else "B") + token[1:]

    await rejection(await browser.post(FORM_URL, data={"csrf_token": other}))


async def test_a_token_with_non_ascii_characters_is_rejected(browser: httpx.AsyncClient) -> None:
    await open_form(browser)

    await rejection(await browser.post(FORM_URL, data={"csrf_token": "é" * 43}))


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost:8001",  # another port is another origin
        "https://localhost:8000",  # and another scheme
        "null",  # a sandboxed frame, a data: URL, a redirect from elsewhere
        "garbage",
    ],
)
async def test_a_post_from_another_origin_is_rejected(
    browser: httpx.AsyncClient, origin: str
) -> None:
    token = await open_form(browser)

    await rejection(
        await browser.post(FORM_URL, data={"csrf_token": token}, headers={"Origin": origin})
    )


async def test_the_origin_check_ignores_case(browser: httpx.AsyncClient) -> None:
    token = await open_form(browser)

    response = await browser.post(
        FORM_URL, data={"csrf_token": token}, headers={"Origin": "HTTP://LOCALHOST:8000"}
    )

    assert response.text == "accepted"


async def test_a_post_the_browser_marks_cross_site_is_rejected(
    browser: httpx.AsyncClient,
) -> None:
    token = await open_form(browser)

    await rejection(
        await browser.post(
            FORM_URL, data={"csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
        )
    )


async def test_a_rejection_the_route_leaves_unhandled_is_a_403_problem(
    browser: httpx.AsyncClient,
) -> None:
    response = await browser.post(UNHANDLED_FORM_URL, data={"csrf_token": "x"})

    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "sent from another site" in response.json()["detail"]


class TestOverHttps:
    @pytest.fixture
    def page_settings_overrides(self) -> dict[str, object]:
        return {"public_url": "https://auth.example"}

    async def test_the_cookie_is_host_prefixed_and_secure(self, browser: httpx.AsyncClient) -> None:
        page = await browser.get(page_url("login.html"))

        cookie = page.headers["set-cookie"]
        assert cookie.startswith("__Host-authsvc_csrf=")
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"secure", "httponly", "path=/", "samesite=strict"} <= attributes

    async def test_the_form_is_accepted_from_the_public_origin_with_its_default_port(
        self, browser: httpx.AsyncClient
    ) -> None:
        token = await open_form(browser)

        response = await browser.post(
            FORM_URL,
            data={"csrf_token": token},
            headers={"Origin": "https://auth.example:443"},
        )

        assert response.text == "accepted"

    async def test_the_plain_cookie_does_not_count(self, browser: httpx.AsyncClient) -> None:
        """A cookie without the __Host- prefix may have been planted by a sibling subdomain."""
        token = await open_form(browser)
        browser.cookies.clear()

        await rejection(
            await browser.post(
                FORM_URL, data={"csrf_token": token}, headers={"Cookie": f"authsvc_csrf={token}"}
            )
        )
