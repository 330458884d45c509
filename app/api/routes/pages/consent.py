"""The hosted consent page: may a third-party client act for the signed-in user?"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response, status
from fastapi.responses import RedirectResponse

from app.api.authorization_answers import invalid_target_page, respond
from app.api.browser_session import browser_secret
from app.api.deps import AuthorizationServiceDep, CallerDep
from app.api.pages import csrf
from app.api.pages.rendering import render_csrf_refusal
from app.api.routes.authorization import authorize
from app.services.authorization.requests import (
    AuthorizationRefused,
    AuthorizationTargetInvalid,
    parse_query,
)

router = APIRouter(tags=["hosted pages"], include_in_schema=False)

FormValue = Annotated[str | None, Form(max_length=8000)]


@router.get("/consent", response_class=Response)
async def consent_page(
    request: Request, service: AuthorizationServiceDep, caller: CallerDep
) -> Response:
    """The consent page for the authorization request in the query (as `/oauth/authorize`
    answers it: the page only when consent is still needed)."""
    return await authorize(request, service, caller)


@router.post("/consent", response_class=Response)
async def decide(
    request: Request,
    service: AuthorizationServiceDep,
    caller: CallerDep,
    csrf_token: FormValue = None,
    decision: FormValue = None,
    authorization_request: Annotated[str | None, Form(alias="request", max_length=8000)] = None,
) -> Response:
    """The user's decision: `approve` answers the client with a code (and remembers the
    grant), `deny` with `access_denied`."""
    try:
        csrf.verify(request, csrf_token)
    except csrf.CsrfRejected:
        return render_csrf_refusal(request)
    try:
        checked = await service.check(parse_query(authorization_request or ""))
        if decision == "approve":
            answer = await service.approve(
                checked, browser_secret(request, service.settings), caller
            )
        elif decision == "deny":
            answer = service.deny(checked)
        else:
            raise checked.refuse("invalid_request", "No decision was made.")
    except AuthorizationTargetInvalid as invalid:
        return invalid_target_page(request, invalid)
    except AuthorizationRefused as refused:
        return RedirectResponse(service.refusal_url(refused), status_code=303)
    return respond(request, answer, status_code=status.HTTP_303_SEE_OTHER)
