"""A tour of the whole HTTP surface in bursts of parallel requests, for tests that run the
service in a setting of its own (behind PgBouncer, ...) and must show that everything works
there, not just one route.

Each step sends its requests at once (up to `USERS` in flight), so a pool in front of the
database really lends its server connections to one transaction after another. What the tour
visited is read back from the service's own `/metrics` (route templates, statuses):
`routes_missed` lists the operations of the OpenAPI document it never reached.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp

from tests.mail.smtp_server import SmtpServer, extract_token, text_part
from tests.oauth.authorization_server import Identity
from tests.oauth.flows import finish, start
from tests.oauth.provider_standin import OIDCStandin
from tests.support.admins import register_client
from tests.support.authorization import RelyingParty, code_for, redeem, register_relying_party
from tests.support.flows import PASSWORD, basic, bearer, password_grant, refresh

USERS = 50  # a burst: this many requests in flight at once
# The users who also verify their address, change their password, reset it, hold two
# sessions: mail and hashing cost the most, and 20 at once still share the pool.
GROUP = 20
ADMIN_ITEMS = 5  # users, roles, permissions made by the administrator (8 reads, 5 writes each)
LINKS = 10  # provider flows (each needs its own browser: a client with its own cookies)
NEW_PASSWORD = "a second passphrase, changed in flight"
RESET_PASSWORD = "a third passphrase, from the reset link"
PUBLIC_GETS = (
    "/health/live",
    "/health/ready",
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
)
_METRIC_LINE = re.compile(
    r'^authsvc_http_request_duration_seconds_count\{method="(?P<method>[A-Z]+)",'
    r'route="(?P<route>[^"]*)",status="(?P<status>\d+)"\} (?P<count>[0-9.e+]+)$'
)


async def burst(calls: Iterable[Awaitable[httpx.Response]], *statuses: int) -> list[httpx.Response]:
    """Send every call at once; each answer must have one of `statuses`."""
    responses = await asyncio.gather(*calls)
    for response in responses:
        assert response.status_code in statuses, (
            response.request.method,
            str(response.request.url),
            response.status_code,
            response.text,
        )
    return list(responses)


def _json(responses: list[httpx.Response], field: str) -> list[Any]:
    return [response.json()[field] for response in responses]


@dataclass
class SurfaceTour:
    """Everything the tour needs: a client of the service (with room for a whole burst), a
    superuser's bearer header, the SMTP server the service mails, and an OpenID Connect
    provider configured as "acme"."""

    client: httpx.AsyncClient
    root: dict[str, str]
    mail: SmtpServer
    provider: OIDCStandin
    # A client of its own per provider flow (the flow's cookie is per browser).
    browser: Callable[[], httpx.AsyncClient]

    async def run(self) -> None:
        await self.public()
        emails = [f"user{n}@scale.example" for n in range(USERS)]
        passwords = await self.accounts(emails)
        await self.tokens(passwords)
        await self.provider_flows(dict(list(passwords.items())[:LINKS]))
        await self.openid_provider(dict(list(passwords.items())[LINKS : 2 * LINKS]))
        await self.second_factors(emails[2 * GROUP :])
        await self.administration()

    async def public(self) -> None:
        paths = [path for path in PUBLIC_GETS for _ in range(USERS // len(PUBLIC_GETS))]
        await burst((self.client.get(path) for path in paths), 200)

    async def accounts(self, emails: list[str]) -> dict[str, str]:
        """Register, verify by mail, sign in, profile; a password change for a group of the
        users, a reset by mail for another. Each user's password afterwards."""
        client = self.client
        await burst(
            (
                client.post("/auth/register", json={"email": e, "password": PASSWORD})
                for e in emails
            ),
            201,
        )
        changing, resetting = emails[:GROUP], emails[GROUP : 2 * GROUP]
        await burst((client.post("/auth/verify/request", json={"email": e}) for e in changing), 202)
        verifications = await self.links("/verify?token=", len(changing))
        await burst((client.post("/auth/verify", json={"token": t}) for t in verifications), 200)
        signed_in = await burst((password_grant(client, e) for e in emails), 200)
        access = dict(zip(emails, _json(signed_in, "access_token"), strict=True))
        profiles = await burst(
            (client.get("/users/me", headers=bearer(a)) for a in access.values()), 200
        )
        verified = [profile.json()["is_verified"] for profile in profiles]
        assert verified == [True] * GROUP + [False] * (len(emails) - GROUP)

        await burst(
            (
                client.patch("/users/me", json={"full_name": "Changed"}, headers=bearer(access[e]))
                for e in changing
            ),
            200,
        )
        change = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        await burst(
            (
                client.post("/users/me/password", json=change, headers=bearer(access[e]))
                for e in changing
            ),
            204,
        )
        await burst(
            (client.post("/auth/password/forgot", json={"email": e}) for e in resetting), 202
        )
        resets = await self.links("/reset-password?token=", len(resetting))
        await burst(
            (
                client.post(
                    "/auth/password/reset", json={"token": t, "new_password": RESET_PASSWORD}
                )
                for t in resets
            ),
            204,
        )
        passwords = dict.fromkeys(emails, PASSWORD)
        passwords |= dict.fromkeys(changing, NEW_PASSWORD)
        passwords |= dict.fromkeys(resetting, RESET_PASSWORD)
        return passwords

    async def links(self, link: str, count: int) -> list[str]:
        """The tokens of the `count` mails whose link contains `link`, waiting for them (the
        service also mails notices: a password was changed, a provider linked)."""
        async with asyncio.timeout(30):
            while True:
                tokens = [
                    extract_token(m) for m in list(self.mail.messages) if link in text_part(m)
                ]
                if len(tokens) >= count:
                    assert len(tokens) == count, (link, len(tokens))
                    return tokens
                await asyncio.sleep(0.05)

    async def tokens(self, passwords: dict[str, str]) -> None:
        """Refresh, sessions, introspection, client credentials, revocation, sign-out."""
        client = self.client
        signed_in = await burst((password_grant(client, e, p) for e, p in passwords.items()), 200)
        renewed = await burst((refresh(client, r) for r in _json(signed_in, "refresh_token")), 200)
        access = _json(renewed, "access_token")

        # A second session for a group of users, which each ends from the first one.
        twice = list(passwords.items())[:GROUP]
        second = await burst((password_grant(client, e, p) for e, p in twice), 200)
        listings = await burst(
            (client.get("/users/me/sessions", headers=bearer(a)) for a in access[:GROUP]), 200
        )
        others = [next(s["id"] for s in listing.json() if not s["current"]) for listing in listings]
        await burst(
            (
                client.delete(f"/users/me/sessions/{other}", headers=bearer(a))
                for other, a in zip(others, access, strict=False)
            ),
            204,
        )
        await burst(
            (
                client.post("/auth/revoke", data={"token": r, "client_id": "authsvc-web"})
                for r in _json(renewed, "refresh_token")[GROUP:]
            ),
            200,
        )
        assert all(response.json()["access_token"] for response in second)

        client_id, secret = await register_client(
            client, self.root, name="api", scopes=["introspect"]
        )
        caller = basic(client_id, secret)
        answers = await burst(
            (client.post("/auth/introspect", data={"token": a}, headers=caller) for a in access),
            200,
        )
        # Those whose refresh token was revoked lost their session with it.
        active = [answer.json()["active"] for answer in answers]
        assert active == [True] * GROUP + [False] * (len(access) - GROUP)
        granted = await burst(
            (
                client.post(
                    "/auth/token", data={"grant_type": "client_credentials"}, headers=caller
                )
                for _ in range(USERS)
            ),
            200,
        )
        machine = _json(granted, "access_token")[:GROUP]
        await burst(
            (client.post("/auth/revoke", data={"token": t}, headers=caller) for t in machine), 200
        )
        answers = await burst(
            (client.post("/auth/introspect", data={"token": t}, headers=caller) for t in machine),
            200,
        )
        assert not any(answer.json()["active"] for answer in answers)

        half = GROUP // 2
        await burst((client.post("/auth/logout", headers=bearer(a)) for a in access[:half]), 204)
        await burst(
            (client.post("/auth/logout-all", headers=bearer(a)) for a in access[half:GROUP]), 204
        )

    async def provider_flows(self, passwords: dict[str, str]) -> None:
        """OAuth state round trips: links started by signed-in users, new sign-ins."""
        signed_in = await burst(
            (password_grant(self.client, e, p) for e, p in passwords.items()), 200
        )
        access = _json(signed_in, "access_token")
        identities = [
            Identity(sub=f"acme-{n}", email=f"work{n}@scale.example") for n in range(len(access))
        ]
        await asyncio.gather(
            *(
                self._flow(identity, bearer(a))
                for identity, a in zip(identities, access, strict=True)
            )
        )
        listings = await burst(
            (self.client.get("/users/me/oauth-accounts", headers=bearer(a)) for a in access), 200
        )
        links = [listing.json()[0]["id"] for listing in listings]
        await burst(
            (
                self.client.delete(f"/users/me/oauth-accounts/{link}", headers=bearer(a))
                for link, a in zip(links, access, strict=True)
            ),
            204,
        )
        strangers = [
            Identity(sub=f"acme-new-{n}", email=f"new{n}@scale.example") for n in range(LINKS)
        ]
        answers = await asyncio.gather(*(self._flow(identity) for identity in strangers))
        assert all("access_token" in answer for answer in answers)

    async def openid_provider(self, passwords: dict[str, str]) -> None:
        """The authorization-code flow, a browser per user: the sign-in and consent pages, the
        code, userinfo, the user's grants, and taking a grant back."""
        rp = await register_relying_party(self.client, self.root)

        async def sign_in_with_code(email: str, password: str) -> dict[str, Any]:
            async with self.browser() as browser:
                request = RelyingParty(client_id=rp.client_id, client_secret=rp.client_secret)
                code = await code_for(browser, request, username=email, password=password)
                redeemed = await redeem(browser, request, code)
                assert redeemed.status_code == 200, redeemed.text
                tokens: dict[str, Any] = redeemed.json()
                return tokens

        signed_in = await asyncio.gather(*(sign_in_with_code(e, p) for e, p in passwords.items()))
        access = [tokens["access_token"] for tokens in signed_in]
        await burst((self.client.get("/oauth/userinfo", headers=bearer(a)) for a in access), 200)
        await burst((self.client.post("/oauth/userinfo", headers=bearer(a)) for a in access), 200)
        await burst((self.client.get("/users/me/grants", headers=bearer(a)) for a in access), 200)
        await burst(
            (
                self.client.delete(f"/users/me/grants/{rp.client_id}", headers=bearer(a))
                for a in access
            ),
            204,
        )

    async def second_factors(self, emails: list[str]) -> None:
        """Enrol an authenticator, sign in in two steps, renew the recovery codes, turn it off;
        an administrator resets another half. (The service's clock is the real one: codes are
        those of now, and the sign-in uses the next step's, as a confirmed code is spent.)"""
        client = self.client
        signed_in = await burst((password_grant(client, e) for e in emails), 200)
        access = _json(signed_in, "access_token")
        started = await burst(
            (client.post("/users/me/mfa/totp", headers=bearer(a)) for a in access), 201
        )
        authenticators = [pyotp.TOTP(secret) for secret in _json(started, "secret")]
        await burst(
            (
                client.post("/users/me/mfa/totp/confirm", json={"code": t.now()}, headers=bearer(a))
                for t, a in zip(authenticators, access, strict=True)
            ),
            200,
        )
        await burst((client.get("/users/me/mfa", headers=bearer(a)) for a in access), 200)
        challenged = await burst((password_grant(client, e) for e in emails), 403)
        strong = await burst(
            (
                client.post(
                    "/auth/token",
                    data={
                        "grant_type": "urn:authsvc:params:oauth:grant-type:mfa",
                        "mfa_token": m,
                        "otp": t.at(time.time(), counter_offset=1),
                    },
                )
                for m, t in zip(_json(challenged, "mfa_token"), authenticators, strict=True)
            ),
            200,
        )
        half = len(emails) // 2
        stepped_up = _json(strong, "access_token")
        await burst(
            (
                client.post("/users/me/mfa/recovery-codes", headers=bearer(a))
                for a in stepped_up[:half]
            ),
            200,
        )
        await burst(
            (client.delete("/users/me/mfa/totp", headers=bearer(a)) for a in stepped_up[:half]),
            204,
        )
        profiles = await burst(
            (client.get("/users/me", headers=bearer(a)) for a in stepped_up[half:]), 200
        )
        await burst(
            (
                client.delete(f"/admin/users/{user_id}/mfa", headers=self.root)
                for user_id in _json(profiles, "id")
            ),
            204,
        )
        # Every one of them signs in with the password alone again.
        await burst((password_grant(client, e) for e in emails), 200)

    async def _flow(
        self, identity: Identity, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        async with self.browser() as browser:
            authorization_url, cookies = await start(browser, "acme", headers=headers)
            code, state = self.provider.approve(authorization_url, identity)
            response = await finish(browser, "acme", code, state, cookies)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def administration(self) -> None:
        """Every admin route: users, roles, permissions, service clients, audit events."""
        client, root = self.client, self.root
        count = ADMIN_ITEMS
        made = await burst(
            (
                client.post(
                    "/admin/users",
                    json={"email": f"made{n}@scale.example", "password": PASSWORD},
                    headers=root,
                )
                for n in range(count)
            ),
            201,
        )
        ids = _json(made, "id")
        codenames = [f"reports{n}:read" for n in range(count)]
        names = [f"analyst{n}" for n in range(count)]
        await burst(
            (
                client.post("/admin/permissions", json={"codename": c}, headers=root)
                for c in codenames
            ),
            201,
        )
        await burst(
            (
                client.post("/admin/roles", json={"name": name, "permissions": [c]}, headers=root)
                for name, c in zip(names, codenames, strict=True)
            ),
            201,
        )
        reads = [
            *(client.get("/admin/users", headers=root) for _ in range(count)),
            *(client.get(f"/admin/users/{i}", headers=root) for i in ids),
            *(client.get("/admin/roles", headers=root) for _ in range(count)),
            *(client.get(f"/admin/roles/{name}", headers=root) for name in names),
            *(client.get("/admin/permissions", headers=root) for _ in range(count)),
            *(client.get(f"/admin/permissions/{c}", headers=root) for c in codenames),
            *(client.get("/admin/clients", headers=root) for _ in range(count)),
            *(client.get("/admin/audit-events", headers=root) for _ in range(count)),
        ]
        await burst(reads, 200)
        described = {"description": "changed in a burst"}
        writes = [
            *(
                client.patch(f"/admin/users/{i}", json={"full_name": "Made"}, headers=root)
                for i in ids
            ),
            *(client.patch(f"/admin/roles/{name}", json=described, headers=root) for name in names),
            *(
                client.patch(f"/admin/permissions/{c}", json=described, headers=root)
                for c in codenames
            ),
            *(
                client.put(
                    f"/admin/roles/{name}/permissions",
                    json={"permissions": codenames},
                    headers=root,
                )
                for name in names
            ),
            *(
                client.put(f"/admin/users/{i}/roles", json={"roles": [name]}, headers=root)
                for i, name in zip(ids, names, strict=True)
            ),
        ]
        await burst(writes, 200)
        await burst((client.delete(f"/admin/users/{i}/sessions", headers=root) for i in ids), 204)
        half = count // 2
        bulk = await client.post(
            "/admin/users/bulk", json={"ids": ids[:half], "action": "deactivate"}, headers=root
        )
        assert bulk.status_code == 200, bulk.text
        assert bulk.json()["affected"] == half
        clients = [await register_client(client, root, name=f"batch{n}") for n in range(2)]
        kept, dropped = (client_id for client_id, _ in clients)
        await burst(
            [
                client.get(f"/admin/clients/{kept}", headers=root),
                client.patch(f"/admin/clients/{kept}", json={"name": "renamed"}, headers=root),
            ],
            200,
        )
        await burst(
            [
                *(client.delete(f"/admin/users/{i}", headers=root) for i in ids[half:]),
                *(client.delete(f"/admin/roles/{name}", headers=root) for name in names),
                client.delete(f"/admin/clients/{dropped}", headers=root),
            ],
            204,
        )
        await burst(
            (client.delete(f"/admin/permissions/{c}", headers=root) for c in codenames), 204
        )


async def routes_served(client: httpx.AsyncClient) -> dict[tuple[str, str], set[int]]:
    """(method, route template) → the statuses the service answered, from its `/metrics`."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    served: dict[tuple[str, str], set[int]] = {}
    for line in response.text.splitlines():
        matched = _METRIC_LINE.match(line)
        if matched and float(matched["count"]) > 0:
            key = (matched["method"], matched["route"])
            served.setdefault(key, set()).add(int(matched["status"]))
    return served


def operations(openapi: dict[str, Any]) -> set[tuple[str, str]]:
    """Every (method, path) of an OpenAPI document."""
    return {
        (method.upper(), path)
        for path, item in openapi["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
