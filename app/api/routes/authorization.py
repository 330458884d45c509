"""The OpenID Provider's authorization endpoint (OpenID Connect Core 3.1.2, RFC 6749 4.1,
RFC 7636, RFC 9207)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from app.api.authorization_answers import invalid_target_page, respond
from app.api.browser_session import browser_secret
from app.api.deps import AuthorizationServiceDep, CallerDep
from app.services.authorization.requests import AuthorizationRefused, AuthorizationTargetInvalid

router = APIRouter(prefix="/oauth", tags=["openid provider"])


@router.get("/authorize", response_class=Response, responses={302: {}, 400: {}})
async def authorize(
    request: Request, service: AuthorizationServiceDep, caller: CallerDep
) -> Response:
    """Start a sign-in for a registered client (`response_type=code`, `client_id`,
    `redirect_uri`, `scope`, `state`, `nonce`, `code_challenge` with
    `code_challenge_method=S256` — required —, `prompt`, `max_age`, `login_hint`).

    Answers with a redirect to the client's `redirect_uri` carrying `code`, `state` and `iss`,
    or the sign-in and consent pages first. Errors go back to the client the same way (`error`,
    `error_description`, `state`, `iss`), except an unknown client or an unregistered
    `redirect_uri`: an error page, never a redirect."""
    try:
        checked = await service.check(request.query_params.multi_items())
        answer = await service.authorize(checked, browser_secret(request, service.settings), caller)
    except AuthorizationTargetInvalid as invalid:
        return invalid_target_page(request, invalid)
    except AuthorizationRefused as refused:
        return RedirectResponse(service.refusal_url(refused), status_code=302)
    return respond(request, answer)
