"""The OAuth2 token endpoint, revocation, introspection and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import JSONResponse

from app.api.client_credentials import claimed_client, client_credentials
from app.api.deps import (
    CallerDep,
    IntrospectionServiceDep,
    PrincipalDep,
    RevocationServiceDep,
    SignOutServiceDep,
    TokenServiceDep,
)
from app.api.oauth_errors import (
    NO_STORE,
    oauth_error,
    oauth_error_from,
    repeated_parameter_error,
)
from app.api.problem_docs import problem_responses
from app.api.token_response import token_json
from app.errors import DomainError
from app.schemas.tokens import (
    IntrospectionBody,
    MfaRequiredBody,
    OAuthErrorBody,
    TokenResponseBody,
)
from app.services.tokens.token_service import MFA_GRANT_TYPE

router = APIRouter(
    prefix="/auth", tags=["auth"], responses=problem_responses(400, 401, 409, 422, 429, 503)
)

FormField = Annotated[str | None, Form()]
OAUTH_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": OAuthErrorBody, "description": "RFC 6749 error"},
    401: {"model": OAuthErrorBody, "description": "Client authentication failed"},
    403: {
        "model": MfaRequiredBody | OAuthErrorBody,
        "description": "`mfa_required` (a second factor is needed), or the client lacks the scope",
    },
    429: {"model": OAuthErrorBody, "description": "Too many failed attempts"},
}


@router.post("/token", response_model=TokenResponseBody, responses=OAUTH_ERRORS)
async def token(
    request: Request,
    service: TokenServiceDep,
    caller: CallerDep,
    grant_type: FormField = None,
    username: FormField = None,
    password: FormField = None,
    refresh_token: FormField = None,
    scope: FormField = None,
    client_id: FormField = None,
    client_secret: FormField = None,
    mfa_token: FormField = None,
    otp: FormField = None,
    recovery_code: FormField = None,
    code: FormField = None,
    redirect_uri: FormField = None,
    code_verifier: FormField = None,
) -> JSONResponse:
    """OAuth2 token endpoint (form-encoded): `authorization_code` (with `code`,
    `redirect_uri` and the PKCE `code_verifier`), `password`, `refresh_token`,
    `client_credentials` and `urn:authsvc:params:oauth:grant-type:mfa` grants.

    The password grant is the first-party sign-in for the operator's own frontends, a
    deliberate deviation from RFC 9700 section 2.4; third-party apps get no password grant.
    Public first-party clients (`AUTH_PUBLIC_CLIENTS`) use it and the refresh grant with a
    bare `client_id`, or naming no client. A registered client uses only the grants it was
    registered with (else `unauthorized_client`), the password grant only if first-party; a
    registered public client (`none`) names itself with a bare `client_id`, and the others
    authenticate with HTTP Basic (`client_secret_basic`) or with `client_id` and
    `client_secret` in the form (`client_secret_post`), either way whichever method they
    were registered with. Credentials that are presented must be right (401).

    For a user with two-step sign-in, the password grant answers 403 `mfa_required` with an
    `mfa_token`; the same client then sends `grant_type=urn:authsvc:params:oauth:grant-type:mfa`
    with `mfa_token` and `otp` (a code from the authenticator app) or `recovery_code`.
    """
    if repeated := await repeated_parameter_error(request):
        return repeated
    try:
        if grant_type == "client_credentials":
            credentials = client_credentials(request, client_id, client_secret)
            result = await service.client_credentials_grant(credentials, scope=scope, caller=caller)
        elif grant_type == "password":
            if not username or password is None:
                return oauth_error("invalid_request", "`username` and `password` are required.")
            result = await service.password_grant(
                username=username,
                password=password,
                scope=scope,
                caller=caller,
                claimed=claimed_client(request, client_id, client_secret),
            )
        elif grant_type == "authorization_code":
            if not code:
                return oauth_error("invalid_request", "`code` is required.")
            result = await service.authorization_code_grant(
                code=code,
                redirect_uri=redirect_uri,
                code_verifier=code_verifier,
                caller=caller,
                claimed=claimed_client(request, client_id, client_secret),
            )
        elif grant_type == "refresh_token":
            if not refresh_token:
                return oauth_error("invalid_request", "`refresh_token` is required.")
            result = await service.refresh_grant(
                refresh_token=refresh_token,
                caller=caller,
                claimed=claimed_client(request, client_id, client_secret),
            )
        elif grant_type == MFA_GRANT_TYPE:
            if not mfa_token or (otp is None) == (recovery_code is None):
                return oauth_error(
                    "invalid_request",
                    "`mfa_token` and one of `otp` or `recovery_code` are required.",
                )
            result = await service.mfa_grant(
                mfa_token=mfa_token,
                otp=otp,
                recovery_code=recovery_code,
                caller=caller,
                claimed=claimed_client(request, client_id, client_secret),
            )
        elif not grant_type:
            return oauth_error("invalid_request", "`grant_type` is required.")
        else:
            return oauth_error("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}.")
    except DomainError as error:
        return oauth_error_from(error)
    # A refresh implicitly asks for the scope first granted (RFC 6749 section 6), and a code
    # for the scope its request asked: their answers always say what the new token holds.
    return token_json(
        result,
        scope_requested=bool(scope) or grant_type in {"refresh_token", "authorization_code"},
    )


@router.post("/revoke", response_class=Response, responses=OAUTH_ERRORS)
async def revoke(
    request: Request,
    service: RevocationServiceDep,
    caller: CallerDep,
    token: FormField = None,
    token_type_hint: FormField = None,
    client_id: FormField = None,
    client_secret: FormField = None,
) -> Response:
    """RFC 7009: 200 whether or not the token was known, or the caller's. A client revokes
    only its own tokens: a refresh token or a user's access token ends its session; a
    service client's access token is refused from then on. Client credentials, when
    presented, must be right (401); without any, the caller is the first-party client."""
    if repeated := await repeated_parameter_error(request):
        return repeated
    if not token:
        return oauth_error("invalid_request", "`token` is required.")
    try:
        await service.revoke(
            token=token,
            token_type_hint=token_type_hint,
            claimed=claimed_client(request, client_id, client_secret),
            caller=caller,
        )
    except DomainError as error:
        return oauth_error_from(error)
    return Response(status_code=status.HTTP_200_OK, headers=NO_STORE)


@router.post("/introspect", response_model=IntrospectionBody, responses=OAUTH_ERRORS)
async def introspect(
    request: Request,
    service: IntrospectionServiceDep,
    caller: CallerDep,
    token: FormField = None,
    token_type_hint: FormField = None,
    client_id: FormField = None,
    client_secret: FormField = None,
) -> JSONResponse:
    """RFC 7662: is `token` (access or refresh) active right now, and what does it carry.

    Only service clients holding the `introspect` scope may ask (401 without valid client
    credentials, 403 without the scope). Anything not currently valid is `{"active": false}`.
    """
    if repeated := await repeated_parameter_error(request):
        return repeated
    try:
        credentials = client_credentials(request, client_id, client_secret)
        if not token:
            return oauth_error("invalid_request", "`token` is required.")
        answer = await service.introspect(credentials, token, token_type_hint, caller=caller)
    except DomainError as error:
        return oauth_error_from(error)
    return JSONResponse(answer, headers=NO_STORE)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: PrincipalDep, service: SignOutServiceDep, caller: CallerDep) -> None:
    """End the current session: its refresh token and access tokens stop working."""
    await service.logout(user_id=principal.user.id, session_id=principal.session_id, caller=caller)


@router.post("/logout-all", status_code=status.HTTP_204_NO_CONTENT)
async def logout_all(
    principal: PrincipalDep, service: SignOutServiceDep, caller: CallerDep
) -> None:
    """End every session and invalidate every outstanding access token of the caller."""
    await service.logout_all(user_id=principal.user.id, caller=caller)
