"""RP-initiated logout (`/logout`): the user confirms, the browser session and every session its
codes opened end, and the browser goes back to the client only at a registered address."""

from __future__ import annotations

import httpx
import pytest

from tests.support.authorization import (
    RelyingParty,
    authorize,
    hidden_fields,
    location,
    query_of,
    register_relying_party,
    tokens_for,
)
from tests.support.flows import bearer, register, sign_in

SIGNED_OUT = "https://app.example/signed-out"


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")


@pytest.fixture
async def rp(client: httpx.AsyncClient, root: dict[str, str]) -> RelyingParty:
    return await register_relying_party(
        client, root, public=True, first_party=True, post_logout_redirect_uris=[SIGNED_OUT]
    )


async def confirm(client: httpx.AsyncClient, **parameters: str) -> httpx.Response:
    page = await client.get("/logout", params=parameters)
    assert page.status_code == 200, page.text
    return await client.post("/logout", data=hidden_fields(page))


async def test_logout_ends_the_browser_session_and_the_tokens_it_gave_the_client(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty
) -> None:
    tokens = await tokens_for(client, rp)
    elsewhere = await sign_in(client, "ada@example.com")  # the password grant: not this browser

    done = await confirm(
        client,
        id_token_hint=tokens["id_token"],
        post_logout_redirect_uri=SIGNED_OUT,
        state="bye-1",
    )

    assert location(done) == f"{SIGNED_OUT}?state=bye-1"
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 401
    assert (
        await client.get("/users/me", headers=bearer(elsewhere["access_token"]))
    ).status_code == 200
    again = await authorize(client, rp)
    assert location(again).startswith("/login?")  # signed out: the sign-in page again


async def test_the_confirmation_page_names_the_client_and_signs_out_nobody_by_itself(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty
) -> None:
    tokens = await tokens_for(client, rp)

    page = await client.get("/logout", params={"id_token_hint": tokens["id_token"]})

    assert "Photo Printer" in page.text
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 200


@pytest.mark.parametrize(
    "redirect",
    ["https://evil.example/", "https://app.example/signed-out/", "https://app.example/callback"],
)
async def test_an_unregistered_post_logout_redirect_uri_is_never_followed(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty, redirect: str
) -> None:
    tokens = await tokens_for(client, rp)

    done = await confirm(
        client, id_token_hint=tokens["id_token"], post_logout_redirect_uri=redirect
    )

    assert done.status_code == 200  # the signed-out page
    assert "location" not in done.headers
    assert "signed out" in done.text


async def test_a_redirect_needs_the_client_of_the_hint_or_client_id(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty, root: dict[str, str]
) -> None:
    other = await register_relying_party(client, root, public=True, first_party=True)
    tokens = await tokens_for(client, rp)

    without_client = await confirm(client, post_logout_redirect_uri=SIGNED_OUT)
    assert "location" not in without_client.headers
    await tokens_for(client, rp)
    disagreeing = await confirm(
        client,
        id_token_hint=tokens["id_token"],
        client_id=other.client_id,
        post_logout_redirect_uri=SIGNED_OUT,
    )
    assert "location" not in disagreeing.headers
    await tokens_for(client, rp)
    by_client_id = await confirm(
        client, client_id=rp.client_id, post_logout_redirect_uri=SIGNED_OUT
    )
    assert query_of(location(by_client_id)) == {}


async def test_a_forged_id_token_hint_names_no_client(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty
) -> None:
    tokens = await tokens_for(client, rp)
    header, payload, signature = tokens["id_token"].split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"

    done = await confirm(client, id_token_hint=forged, post_logout_redirect_uri=SIGNED_OUT)

    assert "location" not in done.headers


async def test_the_logout_form_refuses_a_post_without_its_csrf_token(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty
) -> None:
    tokens = await tokens_for(client, rp)

    forged = await client.post("/logout", data={"post_logout_redirect_uri": SIGNED_OUT})

    assert forged.status_code == 403
    assert (
        await client.get("/users/me", headers=bearer(tokens["access_token"]))
    ).status_code == 200
