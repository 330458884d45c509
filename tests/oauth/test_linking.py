"""Provider identities and local accounts: linking by verified email (with the account
pre-hijacking defence), refusing unverified emails, explicit links by a signed-in user, and
listing and removing links."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.oauth.authorization_server import Identity
from tests.oauth.flows import (
    Sessions,
    audit_count,
    link_count,
    sign_in_with,
    tokens_from,
    user_count,
    verified_account,
)
from tests.oauth.provider_standin import OIDCStandin
from tests.support.flows import (
    assert_problem,
    bearer,
    password_grant,
    refresh,
    register_and_sign_in,
)

pytestmark = pytest.mark.usefixtures("app")

ADA_EMAIL = "ada@example.com"
ADA = Identity(sub="acme-ada-1", email=ADA_EMAIL, email_verified=True, name="Ada")


async def me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get("/users/me", headers=bearer(access_token))


async def user_id(client: httpx.AsyncClient, access_token: str) -> str:
    response = await me(client, access_token)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def links_of(client: httpx.AsyncClient, access_token: str) -> list[dict[str, Any]]:
    response = await client.get("/users/me/oauth-accounts", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    links: list[dict[str, Any]] = response.json()
    return links


async def link(
    client: httpx.AsyncClient,
    standin: OIDCStandin,
    access_token: str,
    identity: Identity,
    provider: str = "acme",
) -> httpx.Response:
    """An explicit link flow of the signed-in user."""
    return await sign_in_with(client, provider, standin, identity, headers=bearer(access_token))


# --- linking by email at sign-in -------------------------------------------------------------


async def test_a_verified_email_links_the_identity_to_the_verified_account(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    local = await verified_account(client, sessions)

    tokens = await tokens_from(client, "acme", standin, ADA)

    assert await user_id(client, tokens["access_token"]) == await user_id(
        client, local["access_token"]
    )
    assert await user_count(sessions) == 1
    [linked] = await links_of(client, tokens["access_token"])
    assert (linked["provider"], linked["account_id"]) == ("acme", ADA.sub)
    assert linked["account_email"] == ADA_EMAIL
    assert await audit_count(sessions, "oauth.linked") == 1
    # A verified account keeps its password and its sessions.
    assert (await password_grant(client, ADA_EMAIL)).status_code == 200
    assert (await refresh(client, local["refresh_token"])).status_code == 200


async def test_linking_a_never_verified_account_removes_its_password_and_sessions(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    # Whoever registered this address with a password never proved they own the mailbox:
    # the provider's verified owner takes the account over, and the squatter is shut out.
    squatter = await register_and_sign_in(client, ADA_EMAIL)
    squatter_id = await user_id(client, squatter["access_token"])

    tokens = await tokens_from(client, "acme", standin, ADA)

    owner = await me(client, tokens["access_token"])
    assert owner.json()["id"] == squatter_id
    assert owner.json()["is_verified"] is True
    assert (await password_grant(client, ADA_EMAIL)).status_code == 400
    assert (await refresh(client, squatter["refresh_token"])).status_code == 400
    assert (await me(client, squatter["access_token"])).status_code == 401
    assert await audit_count(sessions, "oauth.linked") == 1


async def test_links_made_by_a_squatter_do_not_survive_the_takeover(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    # The "trojan identifier" variant of pre-hijacking: the squatter also links an identity
    # of their own at a provider before the owner arrives, to keep a way in.
    squatter = await register_and_sign_in(client, ADA_EMAIL)
    squatter_identity = Identity(sub="acme-squatter", email="squatter@evil.example")
    # Refusing links to a never-verified account is a defence too; linking is the setup.
    squatter_link = await link(client, standin, squatter["access_token"], squatter_identity)
    assert squatter_link.status_code in (200, 403, 409), squatter_link.text

    owner = await tokens_from(client, "acme-two", standin, ADA)

    assert [item["account_id"] for item in await links_of(client, owner["access_token"])] == [
        ADA.sub
    ]
    response = await sign_in_with(client, "acme", standin, squatter_identity)
    if response.status_code == 200:
        assert await user_id(client, response.json()["access_token"]) != await user_id(
            client, owner["access_token"]
        )


async def test_an_unverified_email_is_not_linked_to_an_existing_account(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    await verified_account(client, sessions)
    unverified = Identity(sub="acme-mallory", email=ADA_EMAIL, email_verified=False)

    response = await sign_in_with(client, "acme", standin, unverified)

    assert_problem(response, 409)
    assert "link" in response.json()["detail"].lower()
    assert await link_count(sessions) == 0
    assert await user_count(sessions) == 1
    assert await audit_count(sessions, "oauth.link_refused") == 1
    assert await audit_count(sessions, "oauth.linked") == 0
    assert (await password_grant(client, ADA_EMAIL)).status_code == 200


async def test_an_unverified_email_leaves_a_never_verified_account_alone(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    local = await register_and_sign_in(client, ADA_EMAIL)
    unverified = Identity(sub="acme-mallory", email=ADA_EMAIL, email_verified=False)

    assert_problem(await sign_in_with(client, "acme", standin, unverified), 409)

    assert (await password_grant(client, ADA_EMAIL)).status_code == 200
    assert (await refresh(client, local["refresh_token"])).status_code == 200


async def test_the_email_match_ignores_case(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    local = await verified_account(client, sessions)
    shouting = Identity(sub=ADA.sub, email="Ada@EXAMPLE.com", email_verified=True)

    tokens = await tokens_from(client, "acme", standin, shouting)

    assert await user_id(client, tokens["access_token"]) == await user_id(
        client, local["access_token"]
    )
    assert await user_count(sessions) == 1


# --- explicit links by a signed-in user ------------------------------------------------------


async def test_a_signed_in_user_links_a_provider_identity(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    local = await verified_account(client, sessions)
    work = Identity(sub="acme-ada-work", email="ada@work.example", email_verified=True)

    response = await link(client, standin, local["access_token"], work)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"id", "provider", "account_id", "account_email", "created_at"}
    assert (body["provider"], body["account_id"], body["account_email"]) == (
        "acme",
        work.sub,
        "ada@work.example",
    )
    assert await links_of(client, local["access_token"]) == [body]
    assert await audit_count(sessions, "oauth.linked") == 1
    # From now on the identity signs in to Ada's account, not to a new one.
    tokens = await tokens_from(client, "acme", standin, work)
    assert await user_id(client, tokens["access_token"]) == await user_id(
        client, local["access_token"]
    )
    assert await user_count(sessions) == 1


async def test_a_link_flow_needs_a_valid_access_token(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/auth/oauth/acme/authorize", headers={"Authorization": "Bearer not-a-token"}
    )

    assert response.status_code == 401
    assert "set-cookie" not in response.headers


async def test_an_identity_linked_to_another_user_cannot_be_linked_again(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    bob = Identity(sub="acme-bob", email="bob@example.com")
    bob_tokens = await tokens_from(client, "acme", standin, bob)
    ada = await verified_account(client, sessions)

    response = await link(client, standin, ada["access_token"], bob)

    assert_problem(response, 409)
    assert await links_of(client, ada["access_token"]) == []
    assert len(await links_of(client, bob_tokens["access_token"])) == 1
    again = await tokens_from(client, "acme", standin, bob)
    assert await user_id(client, again["access_token"]) == await user_id(
        client, bob_tokens["access_token"]
    )


# --- listing and removing links --------------------------------------------------------------


async def test_links_are_listed_for_their_owner_only(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    ada = await tokens_from(client, "acme", standin, ADA)
    assert (await link(client, standin, ada["access_token"], ADA, "acme-two")).status_code == 200
    bob = await tokens_from(client, "acme", standin, Identity(sub="acme-bob", email="b@x.example"))

    links = await links_of(client, ada["access_token"])

    assert sorted((item["provider"], item["account_id"]) for item in links) == [
        ("acme", ADA.sub),
        ("acme-two", ADA.sub),
    ]
    assert all(
        set(item) == {"id", "provider", "account_id", "account_email", "created_at"}
        for item in links
    )
    assert [item["provider"] for item in await links_of(client, bob["access_token"])] == ["acme"]


async def test_the_links_need_a_signed_in_user(client: httpx.AsyncClient) -> None:
    assert (await client.get("/users/me/oauth-accounts")).status_code == 401
    assert (await client.delete(f"/users/me/oauth-accounts/{uuid.uuid4()}")).status_code == 401


async def test_the_last_way_to_sign_in_cannot_be_unlinked(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    tokens = await tokens_from(client, "acme", standin, ADA)
    [only] = await links_of(client, tokens["access_token"])

    response = await client.delete(
        f"/users/me/oauth-accounts/{only['id']}", headers=bearer(tokens["access_token"])
    )

    assert_problem(response, 409)
    assert await links_of(client, tokens["access_token"]) == [only]
    assert await audit_count(sessions, "oauth.unlinked") == 0


async def test_a_link_can_be_removed_when_a_password_is_left(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    local = await verified_account(client, sessions)
    linked = (await link(client, standin, local["access_token"], ADA)).json()

    response = await client.delete(
        f"/users/me/oauth-accounts/{linked['id']}", headers=bearer(local["access_token"])
    )

    assert response.status_code == 204
    assert await links_of(client, local["access_token"]) == []
    assert await audit_count(sessions, "oauth.unlinked") == 1
    assert (await password_grant(client, ADA_EMAIL)).status_code == 200


async def test_one_of_two_links_can_be_removed_without_a_password(
    client: httpx.AsyncClient, standin: OIDCStandin
) -> None:
    tokens = await tokens_from(client, "acme", standin, ADA)
    second = (await link(client, standin, tokens["access_token"], ADA, "acme-two")).json()
    headers = bearer(tokens["access_token"])

    assert (
        await client.delete(f"/users/me/oauth-accounts/{second['id']}", headers=headers)
    ).status_code == 204
    [last] = await links_of(client, tokens["access_token"])
    assert_problem(
        await client.delete(f"/users/me/oauth-accounts/{last['id']}", headers=headers), 409
    )


async def test_someone_elses_link_is_not_found(
    client: httpx.AsyncClient, standin: OIDCStandin, sessions: Sessions
) -> None:
    bob = await tokens_from(client, "acme", standin, Identity(sub="acme-bob", email="b@x.example"))
    ada = await tokens_from(client, "acme-two", standin, ADA)
    await link(client, standin, ada["access_token"], ADA, "acme")  # ada has two: not her last
    [bobs] = await links_of(client, bob["access_token"])

    for link_id in (bobs["id"], str(uuid.uuid4())):
        response = await client.delete(
            f"/users/me/oauth-accounts/{link_id}", headers=bearer(ada["access_token"])
        )
        assert_problem(response, 404)
    assert await links_of(client, bob["access_token"]) == [bobs]
