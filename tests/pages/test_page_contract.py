"""What the page routes rely on in each template: the field names a form posts, and the
attributes browsers and password managers act on."""

from __future__ import annotations

import re

import httpx

from tests.pages.conftest import page_url
from tests.pages.outline import PageOutline


async def outline_of(browser: httpx.AsyncClient, template: str) -> tuple[str, PageOutline]:
    page = await browser.get(page_url(template))
    return page.text, PageOutline.of(page.text)


def inputs(outline: PageOutline) -> dict[str, dict[str, str]]:
    return {element.attributes["name"]: element.attributes for element in outline.all("input")}


async def test_sign_in_posts_username_password_and_where_to_go(
    browser: httpx.AsyncClient,
) -> None:
    page, outline = await outline_of(browser, "login.html")
    fields = inputs(outline)

    assert outline.all("form")[0].attributes["action"] == "/login"
    assert fields["username"]["autocomplete"] == "username"
    assert fields["username"]["value"] == "ann@example.com"
    assert fields["password"]["autocomplete"] == "current-password"
    assert fields["password"]["type"] == "password"
    assert "value" not in fields["password"]
    assert fields["next"] == {
        "type": "hidden",
        "name": "next",
        "value": "/oauth/authorize?client_id=app&state=xyz",
    }
    assert [button.text for button in outline.all("button")] == ["Sign in"]
    assert re.search(r'<p id="login-error" class="alert" role="alert">', page)
    assert fields["username"]["aria-describedby"] == "login-error"


async def test_the_second_step_offers_a_code_and_a_recovery_code(
    browser: httpx.AsyncClient,
) -> None:
    _, outline = await outline_of(browser, "mfa.html")
    fields = inputs(outline)

    assert fields["otp"]["autocomplete"] == "one-time-code"
    assert fields["otp"]["inputmode"] == "numeric"
    assert fields["otp"]["pattern"] == "[0-9]*"
    assert "recovery_code" in fields
    assert [summary.text for summary in outline.all("summary")] == ["Use a recovery code instead"]
    assert "open" not in outline.all("details")[0].attributes
    # Both forms carry the flow's hidden fields.
    assert outline.form_fields == [["csrf_token", "next", "mfa_token"]] * 2


async def test_consent_lists_the_scopes_and_posts_a_decision(browser: httpx.AsyncClient) -> None:
    page, outline = await outline_of(browser, "consent.html")

    decisions = [
        (button.attributes["name"], button.attributes["value"], button.text)
        for button in outline.all("button")
    ]
    assert decisions == [("decision", "approve", "Allow"), ("decision", "deny", "Deny")]
    assert [item.text for item in outline.all("li")] == [
        "Confirm who you are (your account ID)",
        "Use the permission users:read",
    ]
    assert inputs(outline)["request"]["value"] == (
        "client_id=example-app&scope=openid+users%3Aread&state=xyz"
    )
    assert "ann@example.com" in page
    assert "example-app" in page


async def test_logout_posts_the_hidden_fields_it_was_given(browser: httpx.AsyncClient) -> None:
    page, outline = await outline_of(browser, "logout.html")

    assert outline.form_fields == [
        ["csrf_token", "id_token_hint", "post_logout_redirect_uri", "state", "client_id"]
    ]
    assert [button.text for button in outline.all("button")] == ["Sign out"]
    assert "Example App asks to sign you out of authsvc." in page
