"""Step-up (RFC 9470) in a consumer service: routes that need a second factor (`acr` aal2) or
a recent sign-in (`max_age`) refuse other tokens with a challenge saying what sign-in to ask
for. Tokens are signed by the live service's own codec; the consumer runs in-process."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from authsvc_kit import (
    AuthsvcKit,
    Claims,
    InsufficientUserAuthentication,
    Introspector,
    check_authentication,
)
from authsvc_kit.fastapi import Authenticated
from tests.kit.conftest import AUDIENCE, ManualClock, verifier_for
from tests.support.flows import bearer
from tests.support.live_server import LiveService

MAX_AGE = 300
LEEWAY = 30  # the verifier's default
USER_ID = "3f9c1d7e-0000-4000-8000-000000000001"

ACR_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="a sign-in at aal2 is required", acr_values="aal2"'
)
MAX_AGE_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="a sign-in within the last 300 seconds is required", max_age=300'
)


def user_token(live: LiveService, *, signed_in_ago: float = 0, **claims: Any) -> str:
    """A user's access token as authsvc issues it, signed in `signed_in_ago` seconds ago;
    `acr`, `amr` (or `auth_time=None`, to leave it out) as given."""
    auth_time = int(time.time() - signed_in_ago)
    fields: dict[str, Any] = {
        "client_id": "authsvc-web",
        "sid": "6d0f3c55-0000-4000-8000-000000000002",
        "ver": 0,
        "auth_time": auth_time,
        **claims,
    }
    return live.mint(**{name: value for name, value in fields.items() if value is not None})


def aal1(live: LiveService, **claims: Any) -> str:
    return user_token(live, acr="aal1", amr=["pwd"], **claims)


def aal2(live: LiveService, **claims: Any) -> str:
    return user_token(live, acr="aal2", amr=["pwd", "otp"], **claims)


def client_token(live: LiveService) -> str:
    """A client-credentials token: no `auth_time`, `acr` or `amr`."""
    return live.codec.encode({"sub": "billing", "client_id": "billing", "scope": "reports"})


def consumer_app(kit: AuthsvcKit) -> FastAPI:
    # Dependencies as defaults: annotations of a function defined in a test module cannot
    # reach its local variables (postponed evaluation).
    anyone = Depends(kit.authenticated())
    second_factor = Depends(kit.require_acr("aal2"))
    recent = Depends(kit.authenticated(max_age=MAX_AGE))
    second_factor_recently = Depends(kit.require_acr("aal2", max_age=MAX_AGE))
    reports_with_second_factor = Depends(kit.require_acr("aal2", scopes=["reports"]))
    app = FastAPI()

    def described(claims: Claims) -> dict[str, Any]:
        return {"sub": claims.subject, "acr": claims.acr, "amr": list(claims.amr)}

    @app.get("/me")
    async def me(claims: Claims = anyone) -> dict[str, Any]:
        return described(claims)

    @app.post("/transfers")
    async def transfers(claims: Claims = second_factor) -> dict[str, Any]:
        return described(claims)

    @app.post("/email")
    async def email(claims: Claims = recent) -> dict[str, Any]:
        return described(claims)

    @app.delete("/account")
    async def account(claims: Claims = second_factor_recently) -> dict[str, Any]:
        return described(claims)

    @app.get("/reports")
    async def reports(claims: Claims = reports_with_second_factor) -> dict[str, Any]:
        return described(claims)

    return app


async def consumer_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://consumer")


@pytest.fixture
async def consumer(
    jwks_service: LiveService, http: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    kit = AuthsvcKit.from_issuer(jwks_service.url, AUDIENCE, http_client=http)
    async with await consumer_for(consumer_app(kit)) as client:
        yield client


# acr: a second factor


async def test_an_aal1_token_is_refused_with_the_step_up_challenge(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    response = await consumer.post("/transfers", headers=bearer(aal1(jwks_service)))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == ACR_CHALLENGE
    assert response.json() == {"detail": "a sign-in at aal2 is required"}


async def test_an_aal2_token_is_let_through(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    response = await consumer.post("/transfers", headers=bearer(aal2(jwks_service)))

    assert response.status_code == 200, response.text
    assert response.json() == {"sub": USER_ID, "acr": "aal2", "amr": ["pwd", "otp"]}


async def test_an_old_aal2_sign_in_passes_where_only_the_acr_is_required(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    token = aal2(jwks_service, signed_in_ago=3 * 3600)  # refreshed for hours: still aal2

    assert (await consumer.post("/transfers", headers=bearer(token))).status_code == 200


async def test_a_token_without_acr_is_refused(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    response = await consumer.post("/transfers", headers=bearer(user_token(jwks_service)))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == ACR_CHALLENGE


@pytest.mark.parametrize("acr", ["AAL2", "aal2 ", 2, ["aal2"], True])
async def test_an_acr_that_only_looks_like_aal2_is_refused(
    consumer: httpx.AsyncClient, jwks_service: LiveService, acr: object
) -> None:
    response = await consumer.post("/transfers", headers=bearer(user_token(jwks_service, acr=acr)))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == ACR_CHALLENGE


async def test_a_client_credentials_token_is_refused_where_a_second_factor_is_required(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    token = client_token(jwks_service)

    assert (await consumer.get("/me", headers=bearer(token))).status_code == 200
    refused = await consumer.post("/transfers", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == ACR_CHALLENGE
    assert (await consumer.get("/reports", headers=bearer(token))).status_code == 401


async def test_a_missing_scope_is_403_before_any_step_up(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    # A second factor would not add the scope: no point asking the user for one.
    response = await consumer.get("/reports", headers=bearer(aal1(jwks_service)))

    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_an_aal2_token_with_the_scope_is_let_through_the_scoped_route(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    refused = await consumer.get("/reports", headers=bearer(aal1(jwks_service, scope="reports")))
    granted = await consumer.get("/reports", headers=bearer(aal2(jwks_service, scope="reports")))

    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == ACR_CHALLENGE
    assert granted.status_code == 200, granted.text


# max_age: a recent sign-in


async def test_an_old_sign_in_is_refused_where_a_recent_one_is_required(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    token = aal1(jwks_service, signed_in_ago=3600)

    response = await consumer.post("/email", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == MAX_AGE_CHALLENGE


async def test_a_fresh_sign_in_is_let_through(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    response = await consumer.post("/email", headers=bearer(aal1(jwks_service, signed_in_ago=5)))

    assert response.status_code == 200, response.text


async def test_a_token_without_auth_time_is_refused_where_a_recent_sign_in_is_required(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    user = aal1(jwks_service, auth_time=None)

    for token in (user, client_token(jwks_service)):
        response = await consumer.post("/email", headers=bearer(token))
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == MAX_AGE_CHALLENGE


async def test_a_sign_in_older_than_max_age_by_less_than_the_leeway_is_let_through(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    # authsvc's clock may run up to the leeway ahead of the consumer's.
    within = aal1(jwks_service, signed_in_ago=MAX_AGE + LEEWAY - 10)
    beyond = aal1(jwks_service, signed_in_ago=MAX_AGE + LEEWAY + 10)

    assert (await consumer.post("/email", headers=bearer(within))).status_code == 200
    refused = await consumer.post("/email", headers=bearer(beyond))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == MAX_AGE_CHALLENGE


async def test_the_max_age_leeway_is_the_verifiers(
    jwks_service: LiveService, http: httpx.AsyncClient
) -> None:
    strict = AuthsvcKit.from_issuer(jwks_service.url, AUDIENCE, http_client=http, leeway=0)
    token = aal1(jwks_service, signed_in_ago=MAX_AGE + 10)

    async with await consumer_for(consumer_app(strict)) as consumer:
        response = await consumer.post("/email", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == MAX_AGE_CHALLENGE


# both


@pytest.mark.parametrize(
    ("acr", "signed_in_ago", "description"),
    [
        ("aal1", 5, "a sign-in at aal2 is required"),
        ("aal2", 3600, "a sign-in within the last 300 seconds is required"),
        ("aal1", 3600, "a sign-in at aal2 within the last 300 seconds is required"),
    ],
)
async def test_a_route_requiring_both_names_both_in_its_challenge(
    consumer: httpx.AsyncClient,
    jwks_service: LiveService,
    acr: str,
    signed_in_ago: int,
    description: str,
) -> None:
    token = user_token(jwks_service, acr=acr, signed_in_ago=signed_in_ago)

    response = await consumer.delete("/account", headers=bearer(token))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        f'error_description="{description}", acr_values="aal2", max_age=300'
    )


async def test_a_recent_aal2_sign_in_passes_a_route_requiring_both(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    response = await consumer.delete("/account", headers=bearer(aal2(jwks_service)))

    assert response.status_code == 200, response.text


async def test_a_client_credentials_token_is_refused_where_both_are_required(
    consumer: httpx.AsyncClient, jwks_service: LiveService
) -> None:
    response = await consumer.delete("/account", headers=bearer(client_token(jwks_service)))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", error_description="a sign-in at aal2 '
        'within the last 300 seconds is required", acr_values="aal2", max_age=300'
    )


# the dependency itself


async def test_several_acceptable_levels_are_sent_in_order_of_preference_with_the_realm(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    verifier = verifier_for(jwks_service, http, kit_clock)
    strong = Depends(Authenticated(verifier, acr_values="aal3 aal2", realm="billing"))
    app = FastAPI()

    @app.get("/strong")
    async def route(_: Claims = strong) -> None:
        return None

    async with await consumer_for(app) as consumer:
        refused = await consumer.get("/strong", headers=bearer(aal1(jwks_service)))
        granted = await consumer.get("/strong", headers=bearer(aal2(jwks_service)))

    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == (
        'Bearer realm="billing", error="insufficient_user_authentication", '
        'error_description="a sign-in at aal3 or aal2 is required", acr_values="aal3 aal2"'
    )
    assert granted.status_code == 200


@pytest.mark.parametrize(
    "declare",
    [
        lambda kit: kit.require_acr(),
        lambda kit: kit.require_acr('aal2", max_age=0'),
        lambda kit: kit.require_acr("aal 2"),
        lambda kit: kit.authenticated(acr_values=[""]),
        lambda kit: kit.authenticated(max_age=-1),
        lambda kit: kit.authenticated(max_age=1.5),
    ],
)
def test_an_unusable_requirement_fails_when_the_route_is_declared(declare: Any) -> None:
    kit = AuthsvcKit.from_issuer("http://authsvc", AUDIENCE)

    with pytest.raises(ValueError, match=r"acr|max_age"):
        declare(kit)


# with introspection, authsvc's answer decides


class StubIntrospection(httpx.AsyncBaseTransport):
    """Stands in for authsvc's introspection endpoint, answering `answer` for an active
    token."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = {"active": True, "token_type": "access_token", "sub": USER_ID, **self.answer}
        return httpx.Response(200, content=json.dumps(body).encode())


async def introspected(
    live: LiveService,
    http: httpx.AsyncClient,
    clock: ManualClock,
    answer: dict[str, Any],
    token: str,
) -> httpx.Response:
    """`token` on a route needing aal2 within MAX_AGE, revocation checked, where authsvc's
    introspection answers `answer`."""
    async with httpx.AsyncClient(transport=StubIntrospection(answer)) as authsvc:
        introspector = Introspector(
            f"{live.url}/auth/introspect", "billing", "secret", http_client=authsvc
        )
        checked = Authenticated(
            verifier_for(live, http, clock),
            acr_values=["aal2"],
            max_age=MAX_AGE,
            introspector=introspector,
        )
        strong = Depends(checked)
        app = FastAPI()

        @app.post("/transfers")
        async def transfers(_: Claims = strong) -> None:
            return None

        async with await consumer_for(app) as consumer:
            return await consumer.post("/transfers", headers=bearer(token))


async def test_with_introspection_authsvcs_current_answer_is_what_is_checked(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    token = aal2(jwks_service)
    now = int(time.time())

    accepted = await introspected(
        jwks_service, http, kit_clock, {"acr": "aal2", "auth_time": now}, token
    )
    answered_aal1 = await introspected(
        jwks_service, http, kit_clock, {"acr": "aal1", "auth_time": now}, token
    )
    answered_old = await introspected(
        jwks_service, http, kit_clock, {"acr": "aal2", "auth_time": now - 3600}, token
    )

    assert accepted.status_code == 200, accepted.text
    assert answered_aal1.status_code == 401
    assert answered_old.status_code == 401
    assert 'acr_values="aal2", max_age=300' in answered_old.headers["WWW-Authenticate"]


async def test_with_introspection_an_answer_without_acr_or_auth_time_is_refused(
    jwks_service: LiveService, http: httpx.AsyncClient, kit_clock: ManualClock
) -> None:
    # An authsvc that does not report how the user signed in: fail closed.
    response = await introspected(jwks_service, http, kit_clock, {}, aal2(jwks_service))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", error_description="a sign-in at aal2 '
        'within the last 300 seconds is required", acr_values="aal2", max_age=300'
    )


# without FastAPI


async def test_claims_read_how_the_user_signed_in(
    jwks_service: LiveService, http: httpx.AsyncClient
) -> None:
    kit = AuthsvcKit.from_issuer(jwks_service.url, AUDIENCE, http_client=http)

    user = await kit.verify(aal2(jwks_service))
    client = await kit.verify(client_token(jwks_service))

    assert (user.acr, user.amr) == ("aal2", ("pwd", "otp"))
    assert isinstance(user.auth_time, int)
    assert (client.acr, client.amr, client.auth_time) == (None, (), None)
    assert Claims({"acr": 2, "amr": "otp"}).acr is None
    assert Claims({"amr": ["pwd", 1, "otp"]}).amr == ("pwd", "otp")


def test_check_authentication_accepts_up_to_max_age_plus_the_leeway_exactly() -> None:
    signed_in = {"acr": "aal2", "auth_time": 1_000_000}
    at = 1_000_000 + MAX_AGE + LEEWAY

    check_authentication(signed_in, acr_values="aal2", max_age=MAX_AGE, now=at)
    check_authentication(signed_in, max_age=MAX_AGE, now=1_000_000 + MAX_AGE, leeway=0)
    with pytest.raises(InsufficientUserAuthentication) as late:
        check_authentication(signed_in, acr_values="aal2", max_age=MAX_AGE, now=at + 1)
    with pytest.raises(InsufficientUserAuthentication):
        check_authentication(signed_in, max_age=MAX_AGE, now=1_000_000 + MAX_AGE + 1, leeway=0)

    assert late.value.acr_values == ("aal2",)
    assert late.value.max_age == MAX_AGE
    assert late.value.description == "a sign-in within the last 300 seconds is required"
    assert late.value.challenge() == (
        'Bearer error="insufficient_user_authentication", error_description="a sign-in '
        'within the last 300 seconds is required", acr_values="aal2", max_age=300'
    )


def test_check_authentication_says_only_what_was_required() -> None:
    with pytest.raises(InsufficientUserAuthentication) as weak:
        check_authentication(Claims({"acr": "aal1"}), acr_values=["aal2"])
    with pytest.raises(InsufficientUserAuthentication) as old:
        check_authentication({"auth_time": 0}, max_age=60)

    assert (weak.value.acr_values, weak.value.max_age) == (("aal2",), None)
    assert weak.value.challenge() == ACR_CHALLENGE
    assert (old.value.acr_values, old.value.max_age) == ((), 60)
    assert old.value.challenge().endswith(", max_age=60")
    check_authentication({})  # requiring nothing passes
