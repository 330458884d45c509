"""Self-service for the signed-in user."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.api.deps import AccountServiceDep, CallerDep, OAuthLoginServiceDep, PrincipalDep
from app.api.problem_docs import problem_responses
from app.schemas.accounts import PasswordChange, ProfileUpdate, SessionRead, UserRead
from app.schemas.oauth import OAuthAccountRead

router = APIRouter(
    prefix="/users/me", tags=["me"], responses=problem_responses(400, 401, 404, 409, 422, 503)
)


@router.get("", response_model=UserRead)
async def read_me(principal: PrincipalDep) -> Response:
    # Serialised once, here: returning a Response skips FastAPI's second validation pass,
    # which matters on the endpoint every client calls most.
    body = UserRead.model_validate(principal.user, from_attributes=True).model_dump_json()
    return Response(body, media_type="application/json")


@router.patch("", response_model=UserRead)
async def update_me(
    body: ProfileUpdate,
    principal: PrincipalDep,
    service: AccountServiceDep,
    caller: CallerDep,
) -> UserRead:
    """Change `full_name`, `username` or `email` (the latter needs `current_password`)."""
    changes = body.model_dump(exclude_unset=True, exclude={"current_password"})
    user = await service.update_profile(
        principal.user.id,
        changes,
        current_password=body.current_password,
        claims=principal.claims,
        caller=caller,
    )
    return UserRead.model_validate(user)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    body: PasswordChange,
    principal: PrincipalDep,
    service: AccountServiceDep,
    caller: CallerDep,
) -> None:
    """Set a new password; every other session ends. With two-step sign-in on, needs a step-up
    (401 `insufficient_user_authentication`, `acr_values="aal2"`, otherwise)."""
    await service.change_password(
        principal.user.id,
        current_password=body.current_password,
        new_password=body.new_password,
        current_session_id=principal.session_id,
        claims=principal.claims,
        caller=caller,
    )


@router.get("/sessions", response_model=list[SessionRead])
async def list_sessions(principal: PrincipalDep, service: AccountServiceDep) -> list[SessionRead]:
    sessions = await service.list_sessions(principal.user.id)
    return [
        SessionRead(
            id=family.id,
            created_at=family.created_at,
            last_used_at=family.last_used_at,
            user_agent=family.user_agent,
            ip=family.ip,
            current=family.id == principal.session_id,
        )
        for family in sessions
    ]


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def end_session(
    session_id: uuid.UUID,
    principal: PrincipalDep,
    service: AccountServiceDep,
    caller: CallerDep,
) -> None:
    await service.end_session(principal.user.id, session_id, caller)


@router.get("/oauth-accounts", response_model=list[OAuthAccountRead])
async def list_oauth_accounts(
    principal: PrincipalDep, service: OAuthLoginServiceDep
) -> list[OAuthAccountRead]:
    """The providers linked to the account."""
    links = await service.list_links(principal.user.id)
    return [OAuthAccountRead.model_validate(link) for link in links]


@router.delete("/oauth-accounts/{link_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unlink_oauth_account(
    link_id: uuid.UUID,
    principal: PrincipalDep,
    service: OAuthLoginServiceDep,
    caller: CallerDep,
) -> None:
    """Unlink a provider; refused (409) when it is the last way to sign in."""
    await service.unlink(principal.user.id, link_id, caller)
