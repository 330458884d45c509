"""Attacks on the authorization-code flow: replayed and stolen codes, PKCE downgrades, open
redirects through `redirect_uri`, CSRF on the hosted forms, framing, and `prompt=none` probing
for accounts."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import httpx
import pytest

from app.security.pkce import s256_challenge
from tests.support.authorization import (
    RelyingParty,
    authorize,
    code_for,
    csrf_token,
    hidden_fields,
    location,
    query_of,
    redeem,
    register_relying_party,
    sign_in_on_page,
)
from tests.support.flows import bearer, register
from tests.support.state import FrozenClock


@pytest.fixture
async def ada(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")


@pytest.fixture
async def rp(client: httpx.AsyncClient, root: dict[str, str]) -> RelyingParty:
    return await register_relying_party(client, root, public=True, first_party=True)


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()


async def test_a_replayed_code_is_refused_and_ends_what_it_issued(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty
) -> None:
    code = await code_for(client, rp)
    first = await redeem(client, rp, code)
    assert first.status_code == 200
    tokens = first.json()

    replay = await redeem(client, rp, code)

    assert_invalid_grant(replay)
    me = await client.get("/users/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401
    refreshed = await client.post(
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": rp.client_id,
        },
    )
    assert refreshed.status_code == 400


async def test_of_fifty_parallel_redemptions_exactly_one_gets_tokens(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty
) -> None:
    code = await code_for(client, rp)

    responses = await asyncio.gather(*(redeem(client, rp, code) for _ in range(50)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(400) == 49, statuses


async def test_a_code_is_refused_to_another_client_and_spent(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty, root: dict[str, str]
) -> None:
    other = await register_relying_party(client, root, public=True, first_party=True)
    code = await code_for(client, rp)

    stolen = await redeem(client, other, code, code_verifier=rp.verifier)
    assert_invalid_grant(stolen)
    assert_invalid_grant(await redeem(client, rp, code))


@pytest.mark.parametrize(
    "change",
    [
        {"redirect_uri": "https://app.example/callback/"},
        {"redirect_uri": None},
        {"code_verifier": None},
        {"code_verifier": "x" * 43},
        {"code_verifier": "short"},
    ],
    ids=["other-redirect-uri", "no-redirect-uri", "no-verifier", "wrong-verifier", "bad-verifier"],
)
async def test_a_code_with_the_wrong_redirect_uri_or_verifier_is_refused(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty, change: dict[str, str | None]
) -> None:
    code = await code_for(client, rp)

    assert_invalid_grant(await redeem(client, rp, code, **change))
    assert_invalid_grant(await redeem(client, rp, code))  # spent by the failed attempt


async def test_an_expired_code_is_refused(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty, clock: FrozenClock
) -> None:
    code = await code_for(client, rp)
    clock.advance(seconds=61)

    assert_invalid_grant(await redeem(client, rp, code))


async def test_an_unknown_code_is_refused(client: httpx.AsyncClient, rp: RelyingParty) -> None:
    assert_invalid_grant(await redeem(client, rp, "not-a-code"))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"scope": "openid users:delete-everything"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "sometimes"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ],
    ids=[
        "no-pkce",
        "plain-pkce",
        "no-method",
        "bad-challenge",
        "implicit",
        "no-response-type",
        "unknown-scope",
        "prompt-none-and-login",
        "unknown-prompt",
        "bad-max-age",
        "request-object",
    ],
)
async def test_a_bad_request_goes_back_to_the_client_with_the_error_state_and_issuer(
    client: httpx.AsyncClient, rp: RelyingParty, change: dict[str, str | None], error: str
) -> None:
    response = await authorize(client, rp, **change)

    target = location(response)
    assert target.startswith(rp.redirect_uri + "?")
    answer = query_of(target)
    assert answer["error"] == error
    assert answer["state"] == rp.state
    assert answer["iss"] == "http://localhost:8000"
    assert "code" not in answer


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://app.example/callback/",
        "https://APP.example/callback",
        "https://app.example/callback/../evil",
        "https://app.example/callbackx",
        "https://app.example/callback?x=1",
        "https://app.example/callback#frag",
        "https://attacker@app.example/callback",
        "https://app.example:8443/callback",
        "http://app.example/callback",
        "https://app.example.evil.example/callback",
        "",
    ],
)
async def test_an_unregistered_redirect_uri_gets_an_error_page_and_never_a_redirect(
    client: httpx.AsyncClient, rp: RelyingParty, redirect_uri: str
) -> None:
    response = await authorize(client, rp, redirect_uri=redirect_uri)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


async def test_an_unknown_client_gets_an_error_page(
    client: httpx.AsyncClient, rp: RelyingParty
) -> None:
    response = await authorize(client, rp, client_id="nobody")

    assert response.status_code == 400
    assert "location" not in response.headers


async def test_a_repeated_redirect_uri_gets_an_error_page(
    client: httpx.AsyncClient, rp: RelyingParty
) -> None:
    query = httpx.QueryParams(rp.authorization_parameters()).add(
        "redirect_uri", "https://evil.example/"
    )
    response = await client.get("/oauth/authorize", params=query)

    assert response.status_code == 400
    assert "location" not in response.headers


async def test_a_loopback_redirect_uri_matches_on_any_port(
    client: httpx.AsyncClient, ada: None, root: dict[str, str]
) -> None:
    native = await register_relying_party(
        client, root, public=True, first_party=True, redirect_uris=("http://127.0.0.1/callback",)
    )
    native.redirect_uri = "http://127.0.0.1:53127/callback"

    code = await code_for(client, native)
    assert (await redeem(client, native, code)).status_code == 200
    other_host = await authorize(client, native, redirect_uri="http://localhost:53127/callback")
    assert other_host.status_code == 400


async def test_prompt_none_says_login_required_whether_or_not_the_account_exists(
    client: httpx.AsyncClient, ada: None, rp: RelyingParty
) -> None:
    known = await authorize(client, rp, prompt="none", login_hint="ada@example.com")
    unknown = await authorize(client, rp, prompt="none", login_hint="nobody@example.com")

    answers = [query_of(location(response)) for response in (known, unknown)]
    assert [answer["error"] for answer in answers] == ["login_required", "login_required"]
    assert answers[0]["error_description"] == answers[1]["error_description"]


async def test_prompt_none_says_consent_required_before_consent(
    client: httpx.AsyncClient, ada: None, root: dict[str, str]
) -> None:
    third_party = await register_relying_party(client, root)
    await sign_in_on_page(client)

    response = await authorize(client, third_party, prompt="none")

    assert query_of(location(response))["error"] == "consent_required"


async def test_the_sign_in_form_refuses_a_post_without_its_csrf_token(
    client: httpx.AsyncClient, ada: None
) -> None:
    page = await client.get("/login")
    fields = {"username": "ada@example.com", "password": "correct horse battery staple"}

    forged = await client.post("/login", data=fields)
    wrong = await client.post("/login", data={**fields, "csrf_token": "A" * 43})
    cross_site = await client.post(
        "/login",
        data={**fields, "csrf_token": csrf_token(page)},
        headers={"Origin": "https://evil.example"},
    )

    assert [forged.status_code, wrong.status_code, cross_site.status_code] == [403, 403, 403]
    assert not any(
        "authsvc_session" in response.headers.get("set-cookie", "")
        for response in (forged, wrong, cross_site)
    )


async def test_the_consent_form_refuses_a_post_without_its_csrf_token(
    client: httpx.AsyncClient, ada: None, root: dict[str, str]
) -> None:
    third_party = await register_relying_party(client, root)
    await sign_in_on_page(client)
    consent_page = await authorize(client, third_party)
    fields = hidden_fields(consent_page)

    forged = await client.post(
        "/consent", data={"request": fields["request"], "decision": "approve"}
    )

    assert forged.status_code == 403
    assert "location" not in forged.headers


@pytest.mark.parametrize("path", ["/login", "/oauth/authorize?client_id=nobody"])
async def test_the_pages_cannot_be_framed_and_run_no_script(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "script-src" not in policy
    assert "default-src 'none'" in policy
    assert "<script" not in response.text
    assert response.headers["cache-control"] == "no-store"


async def test_the_sign_in_page_only_returns_to_the_authorization_endpoint(
    client: httpx.AsyncClient, ada: None
) -> None:
    for next_url in ("https://evil.example/", "//evil.example/", "/\\evil.example", "/users/me"):
        signed_in = await sign_in_on_page(client, f"/login?{urlencode({'next': next_url})}")
        assert signed_in.status_code == 200, next_url  # the "signed in" page, no redirect
        assert "location" not in signed_in.headers


def test_the_challenge_helper_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


async def test_the_sign_in_forms_may_lead_only_to_the_registered_client(
    client: httpx.AsyncClient, rp: RelyingParty
) -> None:
    """Chromium holds the redirects after a form POST to `form-action`: the sign-in page lets
    them reach the request's registered redirect URI, and no other address."""
    authorize_path = f"/oauth/authorize?{urlencode(rp.authorization_parameters())}"
    forged = rp.authorization_parameters(redirect_uri="https://evil.example/cb")

    page = await client.get(f"/login?{urlencode({'next': authorize_path})}")
    elsewhere = await client.get(
        f"/login?{urlencode({'next': '/oauth/authorize?' + urlencode(forged)})}"
    )

    assert "form-action 'self' https://app.example;" in page.headers["content-security-policy"]
    assert "form-action 'self';" in elsewhere.headers["content-security-policy"]
