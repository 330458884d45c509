"""The relying party of the browser tests does what a careful OpenID Connect client does: PKCE,
state and nonce on the way out; state, issuer, ID token and userinfo checked on the way back.

Its authorization request is checked against the live authsvc's discovery document; the whole
code flow against the OpenID Connect stand-in of tests/oauth, which approves sign-ins without
a browser.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.browser.registration import register_relying_party
from tests.oauth.authorization_server import Identity
from tests.oauth.provider_standin import OIDCStandin
from tests.support.live_server import LiveService
from tests.support.relying_party import RelyingParty, SignInResult

CLIENT_ID = "relying-party"
CLIENT_SECRET = "relying-party-secret"
ADA = Identity(sub="ada-42", email="ada@example.com", name="Ada Lovelace")


def query_of(url: str) -> dict[str, str]:
    """The parameters of `url`, each given once."""
    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values()), query
    return {name: values[0] for name, values in query.items()}


async def start_sign_in(http: httpx.AsyncClient, rp: RelyingParty, **params: str | int) -> str:
    """What a browser would be sent to by the relying party's `/login`."""
    response = await http.get(rp.login_url(**params))
    assert response.status_code == 302, response.text
    return response.headers["location"]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A browser that does not follow redirects, so each step can be looked at."""
    async with httpx.AsyncClient(timeout=30, follow_redirects=False) as client:
        yield client


# --- the authorization request, against authsvc ------------------------------------------


@pytest.fixture
def authsvc_rp(live_service: LiveService, relying_party: RelyingParty) -> RelyingParty:
    """The `relying_party` fixture, as a public client "rp-public" unless a test registers it."""
    # authsvc's discovery document does not list an authorization endpoint yet; the relying
    # party is told where it will be. Drop this line once discovery lists it.
    relying_party.endpoints["authorization_endpoint"] = f"{live_service.url}/oauth/authorize"
    relying_party.use_client("rp-public")
    return relying_party


async def test_login_sends_the_browser_to_the_authorization_endpoint_with_pkce_state_and_nonce(
    http: httpx.AsyncClient, live_service: LiveService, authsvc_rp: RelyingParty
) -> None:
    location = await start_sign_in(http, authsvc_rp)

    assert location.startswith(f"{live_service.url}/oauth/authorize?")
    # A third-party app is another site than the provider: SameSite rules apply as in production.
    assert urlsplit(authsvc_rp.redirect_uri).hostname != urlsplit(live_service.url).hostname
    query = query_of(location)
    assert query["response_type"] == "code"
    assert query["client_id"] == "rp-public"
    assert query["redirect_uri"] == authsvc_rp.redirect_uri
    assert query["scope"] == "openid profile email"
    assert len(query["state"]) >= 20
    assert len(query["nonce"]) >= 20
    assert len(query["code_challenge"]) == 43
    assert query["code_challenge_method"] == "S256"
    assert not {"prompt", "max_age", "login_hint"} & query.keys()


async def test_login_passes_on_scope_prompt_max_age_and_login_hint(
    http: httpx.AsyncClient, authsvc_rp: RelyingParty
) -> None:
    location = await start_sign_in(
        http,
        authsvc_rp,
        scope="openid offline_access",
        prompt="login",
        max_age=0,
        login_hint="ada@example.com",
    )

    query = query_of(location)
    assert query["scope"] == "openid offline_access"
    assert (query["prompt"], query["max_age"]) == ("login", "0")
    assert query["login_hint"] == "ada@example.com"


async def test_every_sign_in_gets_its_own_state_nonce_and_challenge(
    http: httpx.AsyncClient, authsvc_rp: RelyingParty
) -> None:
    first = query_of(await start_sign_in(http, authsvc_rp))
    second = query_of(await start_sign_in(http, authsvc_rp))

    for name in ("state", "nonce", "code_challenge"):
        assert first[name] != second[name]


@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
async def test_the_relying_party_registers_at_authsvc_and_signs_in_as_that_client(
    http: httpx.AsyncClient,
    service_client: httpx.AsyncClient,
    live_root: dict[str, str],
    authsvc_rp: RelyingParty,
    public: bool,
) -> None:
    """authsvc accepts the relying party's callback and signed-out page as a client's URIs."""
    client_id = await register_relying_party(service_client, live_root, authsvc_rp, public=public)

    client = (await service_client.get(f"/admin/clients/{client_id}", headers=live_root)).json()
    assert client["redirect_uris"] == [authsvc_rp.redirect_uri]
    assert client["post_logout_redirect_uris"] == [authsvc_rp.post_logout_redirect_uri]
    assert client["token_endpoint_auth_method"] == ("none" if public else "client_secret_basic")
    assert query_of(await start_sign_in(http, authsvc_rp))["client_id"] == client_id


# --- the whole code flow, against the stand-in provider ----------------------------------


@pytest.fixture(scope="module")
def standin() -> Iterator[OIDCStandin]:
    server = OIDCStandin(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def rp(standin: OIDCStandin) -> Iterator[RelyingParty]:
    """A confidential client of the stand-in (which has no end-session endpoint of its own)."""
    standin.reset()
    rp = RelyingParty(
        provider=standin.url, endpoints={"end_session_endpoint": f"{standin.url}/logout"}
    ).start()
    rp.use_client(CLIENT_ID, CLIENT_SECRET)
    try:
        yield rp
    finally:
        rp.stop()


async def come_back(
    http: httpx.AsyncClient, rp: RelyingParty, **params: str
) -> tuple[httpx.Response, SignInResult]:
    """The provider sends the browser back to the relying party's callback with `params`."""
    response = await http.get(rp.redirect_uri, params=params)
    return response, rp.results[-1]


async def sign_in(
    http: httpx.AsyncClient, rp: RelyingParty, standin: OIDCStandin, **callback: str
) -> tuple[httpx.Response, SignInResult]:
    """Ada signs in at the stand-in; the callback carries `callback` on top of code and
    state."""
    code, state = standin.approve(await start_sign_in(http, rp), ADA)
    return await come_back(http, rp, code=code, state=state, **callback)


def shown(response: httpx.Response, element_id: str) -> dict[str, Any]:
    """The JSON the relying party's page shows in `<pre id=element_id>`."""
    start = response.text.index(f'<pre id="{element_id}">') + len(f'<pre id="{element_id}">')
    end = response.text.index("</pre>", start)
    shown_json: dict[str, Any] = json.loads(html.unescape(response.text[start:end]))
    return shown_json


async def test_a_callback_is_redeemed_validated_and_shown_with_userinfo(
    http: httpx.AsyncClient, rp: RelyingParty, standin: OIDCStandin
) -> None:
    response, result = await sign_in(http, rp, standin, iss=standin.url)

    assert response.status_code == 200
    assert result.error is None
    assert result.sub == "ada-42"
    assert result.userinfo["email"] == "ada@example.com"
    assert not result.has_refresh_token
    page = shown(response, "result")
    assert page["sub"] == "ada-42"
    assert page["id_token_claims"]["aud"] == CLIENT_ID
    assert page["userinfo"]["name"] == "Ada Lovelace"
    assert page["has_refresh_token"] is False
    # The code went back with its PKCE verifier and HTTP Basic client authentication.
    redemption = standin.token_requests[-1]
    assert redemption.client_authentication == "client_secret_basic"
    assert redemption.form["redirect_uri"] == rp.redirect_uri
    assert len(redemption.form["code_verifier"]) >= 43


async def test_a_callback_with_a_state_it_never_sent_is_refused_without_redeeming_the_code(
    http: httpx.AsyncClient, rp: RelyingParty, standin: OIDCStandin
) -> None:
    code, _ = standin.approve(await start_sign_in(http, rp), ADA)

    response, result = await come_back(http, rp, code=code, state="forged-state")

    assert response.status_code == 400
    assert shown(response, "error")["error"] == result.error == "invalid_state"
    assert standin.token_requests == []


async def test_a_state_is_good_for_one_callback(
    http: httpx.AsyncClient, rp: RelyingParty, standin: OIDCStandin
) -> None:
    code, state = standin.approve(await start_sign_in(http, rp), ADA)
    await come_back(http, rp, code=code, state=state)

    _, replayed = await come_back(http, rp, code=code, state=state)

    assert replayed.error == "invalid_state"
    assert len(standin.token_requests) == 1


async def test_a_callback_from_another_issuer_is_refused_as_a_mix_up(
    http: httpx.AsyncClient, rp: RelyingParty, standin: OIDCStandin
) -> None:
    _, result = await sign_in(http, rp, standin, iss="https://attacker.example")

    assert result.error == "invalid_issuer"
    assert standin.token_requests == []


async def test_an_error_from_the_provider_is_shown(
    http: httpx.AsyncClient, rp: RelyingParty, standin: OIDCStandin
) -> None:
    state = query_of(await start_sign_in(http, rp))["state"]

    response, result = await come_back(
        http, rp, error="access_denied", error_description="The user declined", state=state
    )

    assert shown(response, "error") == {
        "error": "access_denied",
        "error_description": "The user declined",
    }
    assert result.error == "access_denied"


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        pytest.param({"nonce": "another-sign-in"}, "nonce", id="nonce"),
        pytest.param({"aud": "another-client"}, "aud", id="aud"),
        pytest.param({"iss": "https://attacker.example"}, "iss", id="iss"),
        pytest.param({"exp": 1_000_000_000}, "expired", id="exp"),
    ],
)
async def test_an_id_token_that_does_not_hold_is_refused(
    http: httpx.AsyncClient,
    rp: RelyingParty,
    standin: OIDCStandin,
    tamper: dict[str, Any],
    why: str,
) -> None:
    standin.alter_next_id_token(**tamper)

    _, result = await sign_in(http, rp, standin)

    assert result.error == "invalid_id_token"
    assert why in (result.error_description or "")
    assert result.sub is None


@pytest.mark.parametrize(
    ("auth_time", "accepted"),
    [
        pytest.param(None, False, id="missing"),
        pytest.param(-3600, False, id="an-hour-ago"),
        pytest.param(-5, True, id="just-now"),
    ],
)
async def test_after_max_age_the_id_token_must_say_the_user_signed_in_since(
    http: httpx.AsyncClient,
    rp: RelyingParty,
    standin: OIDCStandin,
    auth_time: int | None,
    accepted: bool,
) -> None:
    if auth_time is not None:
        standin.alter_next_id_token(auth_time=int(time.time()) + auth_time)
    code, state = standin.approve(await start_sign_in(http, rp, max_age=60), ADA)

    _, result = await come_back(http, rp, code=code, state=state)

    assert (result.error is None) is accepted, result.error_description
    if not accepted:
        assert "auth_time" in (result.error_description or "")


@pytest.mark.parametrize("forgery", ["forged", "unsigned"])
async def test_an_id_token_not_signed_by_the_provider_is_refused(
    http: httpx.AsyncClient, rp: RelyingParty, standin: OIDCStandin, forgery: str
) -> None:
    if forgery == "forged":
        standin.forge_next_id_token()
    else:
        standin.send_unsigned_next_id_token()

    _, result = await sign_in(http, rp, standin)

    assert result.error == "invalid_id_token"


async def test_userinfo_about_someone_else_is_refused(
    http: httpx.AsyncClient, rp: RelyingParty, standin: OIDCStandin
) -> None:
    standin.alter_userinfo(sub="someone-else")

    _, result = await sign_in(http, rp, standin)

    assert result.error == "userinfo_mismatch"


async def test_logout_sends_the_id_token_and_a_state_that_signed_out_checks(
    http: httpx.AsyncClient, rp: RelyingParty, standin: OIDCStandin
) -> None:
    _, signed_in = await sign_in(http, rp, standin)

    response = await http.get(rp.logout_url)

    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(f"{standin.url}/logout?")
    query = query_of(location)
    assert query["id_token_hint"] == signed_in.id_token
    assert query["post_logout_redirect_uri"] == rp.post_logout_redirect_uri
    await http.get(rp.post_logout_redirect_uri, params={"state": query["state"]})
    await http.get(rp.post_logout_redirect_uri, params={"state": "not-ours"})
    assert [(s.state, s.state_matches) for s in rp.sign_outs] == [
        (query["state"], True),
        ("not-ours", False),
    ]
