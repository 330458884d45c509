"""The third-party clients the signed-in user granted access to (the consent page's record)."""

from __future__ import annotations

from fastapi import APIRouter, Path, status

from app.api.deps import CallerDep, PrincipalDep, UserGrantsServiceDep
from app.api.problem_docs import problem_responses
from app.config import CLIENT_ID_MAX_LENGTH
from app.schemas.accounts import ClientGrantRead

router = APIRouter(
    prefix="/users/me/grants", tags=["me"], responses=problem_responses(401, 404, 422)
)


@router.get("", response_model=list[ClientGrantRead])
async def list_grants(
    principal: PrincipalDep, service: UserGrantsServiceDep
) -> list[ClientGrantRead]:
    """Each client granted access on the consent page: its scopes and when."""
    grants = await service.list_for(principal.user.id)
    return [ClientGrantRead.model_validate(grant, from_attributes=True) for grant in grants]


@router.delete("/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_grant(
    principal: PrincipalDep,
    service: UserGrantsServiceDep,
    caller: CallerDep,
    client_id: str = Path(max_length=CLIENT_ID_MAX_LENGTH),
) -> None:
    """Take the grant back: the client's refresh and access tokens for you stop working, and
    its next sign-in asks for consent again."""
    await service.revoke(principal.user.id, client_id, caller)
