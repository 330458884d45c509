"""Sign-up."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import CallerDep, RegistrationServiceDep
from app.api.problem_docs import problem_responses
from app.schemas.accounts import RegisterRequest, UserRead

router = APIRouter(
    prefix="/auth", tags=["auth"], responses=problem_responses(400, 401, 409, 422, 429, 503)
)


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=UserRead)
async def register(
    body: RegisterRequest, service: RegistrationServiceDep, caller: CallerDep
) -> UserRead:
    """Create an account. Duplicate email or username: 409; weak password: 422."""
    user = await service.register(
        email=body.email,
        password=body.password,
        username=body.username,
        full_name=body.full_name,
        caller=caller,
    )
    return UserRead.model_validate(user)
