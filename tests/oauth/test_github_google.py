"""The built-in providers, against in-process fakes of their APIs: GitHub (no OpenID Connect:
the email comes from its list of addresses) and Google (OpenID Connect with fixed endpoints)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.oauth.authorization_server import Identity, s256
from tests.oauth.conftest import GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, GOOGLE_CLIENT_ID
from tests.oauth.fake_providers import (
    GITHUB_AUTHORIZE_URL,
    GOOGLE_AUTHORIZE_URL,
    GOOGLE_JWKS_URL,
    GOOGLE_TOKEN_URL,
    GitHubFake,
    GitHubUser,
    GoogleFake,
    ProviderMocks,
    github_email,
)
from tests.oauth.flows import (
    Sessions,
    audit_count,
    finish,
    link_count,
    own_callback,
    query_of,
    sign_in_with,
    start,
    tokens_from,
    user_count,
)
from tests.support.admins import update_user
from tests.support.flows import assert_problem, bearer, password_grant, register

pytestmark = pytest.mark.usefixtures("app")

OCTOCAT = GitHubUser(
    id=583231,
    login="octocat",
    name="The Octocat",
    public_email=None,
    emails=[
        github_email("octocat@old.example", verified=True),
        github_email("octocat@github.example", primary=True, verified=True),
        github_email("octo@unverified.example", verified=False),
    ],
)
GRACE = Identity(sub="10769150350006150715113082367", email="grace@gmail.example", name="Grace")


async def me(client: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    response = await client.get("/users/me", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def verified_account(client: httpx.AsyncClient, sessions: Sessions, email: str) -> None:
    await register(client, email)
    async with sessions() as session:
        await update_user(session, email, is_verified=True)


# --- GitHub ----------------------------------------------------------------------------------


async def test_github_authorization_url_carries_state_and_pkce(
    client: httpx.AsyncClient, github: GitHubFake
) -> None:
    authorization_url, _ = await start(client, "github")

    assert authorization_url.startswith(f"{GITHUB_AUTHORIZE_URL}?")
    params = query_of(authorization_url)
    assert params["client_id"] == GITHUB_CLIENT_ID
    assert params["redirect_uri"] == own_callback("github")
    assert params["state"]
    assert params["code_challenge_method"] == "S256"
    assert "user:email" in params["scope"].split()


async def test_github_sign_in_creates_a_user_with_the_primary_verified_email(
    client: httpx.AsyncClient, github: GitHubFake, sessions: Sessions
) -> None:
    authorization_url, cookies = await start(client, "github")
    code, state = github.approve(authorization_url, OCTOCAT)

    response = await finish(client, "github", code, state, cookies)

    assert response.status_code == 200, response.text
    user = await me(client, response.json()["access_token"])
    assert user["email"] == "octocat@github.example"
    assert user["is_verified"] is True
    [token_request] = github.token_requests
    assert token_request.form["client_id"] == GITHUB_CLIENT_ID
    assert token_request.form["redirect_uri"] == own_callback("github")
    assert (
        s256(token_request.form["code_verifier"]) == query_of(authorization_url)["code_challenge"]
    )
    accounts = await client.get(
        "/users/me/oauth-accounts", headers=bearer(response.json()["access_token"])
    )
    [link] = accounts.json()
    assert (link["provider"], link["account_id"], link["account_email"]) == (
        "github",
        "583231",
        "octocat@github.example",
    )
    assert await audit_count(sessions, "oauth.login") == 1


async def test_github_client_credentials_are_right(
    client: httpx.AsyncClient, github: GitHubFake
) -> None:
    await tokens_from(client, "github", github, OCTOCAT)

    [token_request] = github.token_requests
    if token_request.client_authentication == "client_secret_post":
        assert token_request.form["client_secret"] == GITHUB_CLIENT_SECRET
    else:
        assert token_request.client_authentication == "client_secret_basic"


async def test_github_returning_user_is_found_by_id_not_by_email(
    client: httpx.AsyncClient, github: GitHubFake, sessions: Sessions
) -> None:
    first = await tokens_from(client, "github", github, OCTOCAT)
    moved = GitHubUser(
        id=OCTOCAT.id,
        login="octocat-renamed",
        emails=[github_email("octocat@new.example", primary=True)],
    )

    second = await tokens_from(client, "github", github, moved)

    assert (await me(client, second["access_token"]))["id"] == (
        await me(client, first["access_token"])
    )["id"]
    assert await user_count(sessions) == 1


async def test_github_primary_verified_email_links_to_the_existing_account(
    client: httpx.AsyncClient, github: GitHubFake, sessions: Sessions
) -> None:
    await verified_account(client, sessions, "octocat@github.example")

    tokens = await tokens_from(client, "github", github, OCTOCAT)

    assert (await me(client, tokens["access_token"]))["email"] == "octocat@github.example"
    assert await user_count(sessions) == 1
    assert await audit_count(sessions, "oauth.linked") == 1


async def test_github_without_a_verified_primary_email_creates_nobody(
    client: httpx.AsyncClient, github: GitHubFake, sessions: Sessions
) -> None:
    unverified = GitHubUser(
        id=1,
        login="nomail",
        public_email="nomail@public.example",
        emails=[github_email("nomail@public.example", primary=True, verified=False)],
    )

    response = await sign_in_with(client, "github", github, unverified)

    assert_problem(response, 400, 409, 422)
    assert "email" in response.json()["detail"].lower()
    assert await user_count(sessions) == 0


async def test_github_unverified_primary_email_is_not_linked_to_an_account(
    client: httpx.AsyncClient, github: GitHubFake, sessions: Sessions
) -> None:
    await verified_account(client, sessions, "victim@example.com")
    impostor = GitHubUser(
        id=2,
        login="impostor",
        # Neither the public email nor a verified secondary address is the primary verified
        # one: GitHub does not vouch for victim@example.com.
        public_email="victim@example.com",
        emails=[
            github_email("victim@example.com", primary=True, verified=False),
            github_email("impostor@example.org", verified=True),
        ],
    )

    response = await sign_in_with(client, "github", github, impostor)

    assert_problem(response, 400, 409, 422)
    assert await link_count(sessions) == 0
    assert await user_count(sessions) == 1
    assert (await password_grant(client, "victim@example.com")).status_code == 200


async def test_github_refusing_the_code_signs_nobody_in(
    client: httpx.AsyncClient, github: GitHubFake, sessions: Sessions
) -> None:
    # GitHub answers a bad code with 200 and {"error": "bad_verification_code"}.
    authorization_url, cookies = await start(client, "github")
    _, state = github.approve(authorization_url, OCTOCAT)

    response = await finish(client, "github", "stale-code", state, cookies)

    assert_problem(response, 400, 502)
    assert await user_count(sessions) == 0


# --- Google ----------------------------------------------------------------------------------


async def test_google_authorization_url_carries_state_pkce_and_nonce(
    client: httpx.AsyncClient, google: GoogleFake
) -> None:
    authorization_url, _ = await start(client, "google")

    assert authorization_url.startswith(f"{GOOGLE_AUTHORIZE_URL}?")
    params = query_of(authorization_url)
    assert params["client_id"] == GOOGLE_CLIENT_ID
    assert params["redirect_uri"] == own_callback("google")
    assert "openid" in params["scope"].split()
    assert params["code_challenge_method"] == "S256"
    assert params["nonce"]
    assert params["state"]


async def test_google_sign_in_creates_a_verified_user(
    client: httpx.AsyncClient, google: GoogleFake, provider_mocks: ProviderMocks
) -> None:
    authorization_url, cookies = await start(client, "google")
    code, state = google.approve(authorization_url, GRACE)

    response = await finish(client, "google", code, state, cookies)

    assert response.status_code == 200, response.text
    user = await me(client, response.json()["access_token"])
    assert (user["email"], user["is_verified"]) == ("grace@gmail.example", True)
    assert provider_mocks.requests[GOOGLE_TOKEN_URL] == 1
    assert provider_mocks.requests[GOOGLE_JWKS_URL] == 1
    [token_request] = google.token_requests
    assert (
        s256(token_request.form["code_verifier"]) == query_of(authorization_url)["code_challenge"]
    )


async def test_google_unverified_email_of_an_existing_account_is_a_conflict(
    client: httpx.AsyncClient, google: GoogleFake, sessions: Sessions
) -> None:
    await verified_account(client, sessions, "grace@gmail.example")
    unverified = Identity(sub=GRACE.sub, email=GRACE.email, email_verified=False)

    response = await sign_in_with(client, "google", google, unverified)

    assert_problem(response, 409)
    assert await link_count(sessions) == 0
    assert await audit_count(sessions, "oauth.link_refused") == 1


async def test_google_email_verified_as_a_string_is_understood(
    client: httpx.AsyncClient, google: GoogleFake, sessions: Sessions
) -> None:
    # Older Google ID tokens carried "email_verified": "true".
    await verified_account(client, sessions, "grace@gmail.example")
    google.alter_next_id_token(email_verified="true")

    await tokens_from(client, "google", google, GRACE)

    assert await link_count(sessions) == 1
    assert await user_count(sessions) == 1


async def test_google_issuer_without_scheme_is_accepted(
    client: httpx.AsyncClient, google: GoogleFake
) -> None:
    # Google documents both "https://accounts.google.com" and "accounts.google.com".
    google.alter_next_id_token(iss="accounts.google.com")

    await tokens_from(client, "google", google, GRACE)


@pytest.mark.parametrize(
    "claims",
    [{"aud": "someone-else.apps.googleusercontent.com"}, {"iss": "https://accounts.evil.example"}],
    ids=["wrong-aud", "wrong-iss"],
)
async def test_google_id_token_for_someone_else_is_refused(
    client: httpx.AsyncClient, google: GoogleFake, sessions: Sessions, claims: dict[str, Any]
) -> None:
    google.alter_next_id_token(**claims)

    response = await sign_in_with(client, "google", google, GRACE)

    assert_problem(response, 502)
    assert await user_count(sessions) == 0
