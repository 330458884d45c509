"""Sign-in with GitHub, Google and OpenID Connect providers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from app.api.deps import (
    AuthorizationServiceDep,
    CallerDep,
    OAuthLoginServiceDep,
    bearer_scheme,
    get_principal,
)
from app.api.oauth_errors import NO_STORE, mfa_required_error
from app.api.oauth_flow_cookie import BROWSER_COOKIE, forget_flow_cookie, keep_flow_cookie
from app.api.problem_docs import problem_responses
from app.api.routes.pages.sign_in import finish_provider_sign_in
from app.api.token_response import token_json
from app.schemas.oauth import AuthorizationUrl, OAuthAccountRead
from app.schemas.tokens import MfaRequiredBody, TokenResponseBody
from app.services.oauth.login import started_on_page
from app.services.tokens.mfa_challenges import MfaRequired
from app.services.tokens.token_issuer import TokenResponse

router = APIRouter(
    prefix="/auth/oauth",
    tags=["oauth"],
    responses=problem_responses(400, 401, 404, 409, 422, 502, 503),
)

QueryValue = Annotated[str | None, Query(max_length=2048)]


@router.get("/{provider}/authorize", response_model=AuthorizationUrl)
async def authorize(
    provider: str,
    request: Request,
    service: OAuthLoginServiceDep,
    token: Annotated[str | None, Depends(bearer_scheme)],
    redirect_uri: QueryValue = None,
) -> JSONResponse:
    """The provider's authorization URL (with `state`, PKCE S256 and, for OpenID Connect, a
    nonce), and a cookie binding the flow to this browser. Signed in (a bearer token), the
    flow links the provider to the caller's account instead of signing in: that needs a
    recent sign-in (`AUTH_REAUTH_MAX_AGE_SECONDS`, else 401 `insufficient_user_authentication`)
    and the flow is void once the caller's session ends or their tokens are revoked."""
    linking = None if token is None else await get_principal(request, token)
    started = await service.start(provider, redirect_uri, linking=linking)
    response = JSONResponse({"authorization_url": started.url}, headers=NO_STORE)
    keep_flow_cookie(response, started.browser_secret, service.settings)
    return response


@router.get(
    "/{provider}/callback",
    response_model=TokenResponseBody | OAuthAccountRead,
    responses={
        400: {"description": "Bad, used, expired or foreign state"},
        403: {"model": MfaRequiredBody, "description": "A second factor is needed"},
    },
)
async def callback(
    provider: str,
    request: Request,
    service: OAuthLoginServiceDep,
    authorization: AuthorizationServiceDep,
    caller: CallerDep,
    code: QueryValue = None,
    state: QueryValue = None,
    error: QueryValue = None,
    browser_secret: Annotated[str | None, Cookie(alias=BROWSER_COOKIE)] = None,
) -> Response:
    """Finish the flow: the same token response as `/auth/token` for a sign-in, or the new
    link for a link flow. For an account with two-step sign-in, the same 403 `mfa_required`
    (with an `mfa_token`) as the token endpoint's password grant.

    A flow started with a button of the hosted sign-in page is answered with pages instead:
    the browser session and a redirect back to the authorization request, the second-factor
    page, or an error page."""
    if started_on_page(state):
        return await finish_provider_sign_in(
            request,
            service,
            authorization,
            provider,
            code=code,
            state=state,
            error=error,
            browser_secret=browser_secret,
            caller=caller,
        )
    try:
        result = await service.finish(
            provider,
            code=code,
            state=state,
            error=error,
            browser_secret=browser_secret,
            caller=caller,
        )
    except MfaRequired as second_factor_needed:
        # The token endpoint's answer for the same case: finish with the MFA grant there.
        response = mfa_required_error(second_factor_needed)
    else:
        if isinstance(result, TokenResponse):
            response = token_json(result)
        else:
            body = OAuthAccountRead.model_validate(result).model_dump(mode="json")
            response = JSONResponse(body, headers=NO_STORE)
    forget_flow_cookie(response)
    return response
