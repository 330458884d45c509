"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the hosted sign-out page.

`GET /logout` asks the user to confirm (a link or an image on another site cannot sign anyone
out); the form's POST ends the browser session and every session its codes opened, then goes
to the client's registered `post_logout_redirect_uri` with `state`, or shows the signed-out
page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from app.api.browser_session import browser_secret, forget_browser_session
from app.api.deps import AuthorizationServiceDep, CallerDep, CodecDep
from app.api.pages import csrf
from app.api.pages.rendering import render_csrf_refusal, render_page
from app.api.pages.security_headers import form_action_source
from app.security.id_tokens import read_id_token_hint
from app.services.authorization.authorization_service import LogoutTarget

router = APIRouter(tags=["hosted pages"], include_in_schema=False)

LOGOUT_PATH = "/logout"
QueryValue = Annotated[str | None, Query(max_length=8000)]
FormValue = Annotated[str | None, Form(max_length=8000)]


@router.get(LOGOUT_PATH, response_class=Response)
async def sign_out_page(
    request: Request,
    service: AuthorizationServiceDep,
    codec: CodecDep,
    id_token_hint: QueryValue = None,
    post_logout_redirect_uri: QueryValue = None,
    state: QueryValue = None,
    client_id: QueryValue = None,
) -> Response:
    """The confirmation page; its form carries the request's parameters."""
    target = await _target(
        service, codec, id_token_hint, client_id, post_logout_redirect_uri, state
    )
    hidden = {
        "id_token_hint": id_token_hint,
        "post_logout_redirect_uri": post_logout_redirect_uri,
        "state": state,
        "client_id": client_id,
    }
    return render_page(
        request,
        "logout.html",
        {"action": LOGOUT_PATH, "client_name": target.client_name, "hidden": hidden},
        # The POST redirects to the client: Chromium applies form-action there too.
        form_action_sources=(form_action_source(target.url),) if target.url else (),
    )


@router.post(LOGOUT_PATH, response_class=Response)
async def sign_out(
    request: Request,
    service: AuthorizationServiceDep,
    codec: CodecDep,
    caller: CallerDep,
    csrf_token: FormValue = None,
    id_token_hint: FormValue = None,
    post_logout_redirect_uri: FormValue = None,
    state: FormValue = None,
    client_id: FormValue = None,
) -> Response:
    """Sign this browser out, then go back to the client (or the signed-out page)."""
    try:
        csrf.verify(request, csrf_token)
    except csrf.CsrfRejected:
        return render_csrf_refusal(request)
    target = await _target(
        service, codec, id_token_hint, client_id, post_logout_redirect_uri, state
    )
    await service.sign_out(browser_secret(request, service.settings), caller)
    response: Response
    if target.url:
        response = RedirectResponse(target.url, status_code=status.HTTP_303_SEE_OTHER)
    else:
        response = render_page(request, "signed_out.html", {"message": "You are signed out."})
    forget_browser_session(response, service.settings)
    return response


async def _target(
    service: AuthorizationServiceDep,
    codec: CodecDep,
    id_token_hint: str | None,
    client_id: str | None,
    post_logout_redirect_uri: str | None,
    state: str | None,
) -> LogoutTarget:
    hint = read_id_token_hint(codec, id_token_hint) if id_token_hint else None
    return await service.logout_target(
        hint=hint,
        client_id=client_id or None,
        post_logout_redirect_uri=post_logout_redirect_uri or None,
        state=state or None,
    )
