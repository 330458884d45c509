"""Email verification and password reset by mailed single-use links."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.api.deps import AccountRecoveryServiceDep, CallerDep
from app.api.problem_docs import problem_responses
from app.schemas.accounts import EmailRequest, PasswordReset, UserRead, VerifyEmail

router = APIRouter(
    prefix="/auth", tags=["account recovery"], responses=problem_responses(400, 422, 429, 503)
)


@router.post("/verify/request", status_code=status.HTTP_202_ACCEPTED)
async def request_verification(
    body: EmailRequest, service: AccountRecoveryServiceDep, caller: CallerDep
) -> None:
    """Mail a verification link. 202 whether or not the account exists."""
    await service.request_verification(body.email, caller)


@router.post("/verify", response_model=UserRead)
async def verify_email(
    body: VerifyEmail, service: AccountRecoveryServiceDep, caller: CallerDep
) -> UserRead:
    """Redeem a verification link; 400 if it is expired, used or forged."""
    user = await service.verify_email(body.token, caller)
    return UserRead.model_validate(user)


@router.post("/password/forgot", status_code=status.HTTP_202_ACCEPTED)
async def forgot_password(
    body: EmailRequest, service: AccountRecoveryServiceDep, caller: CallerDep
) -> None:
    """Mail a password-reset link. 202 whether or not the account exists."""
    await service.forgot_password(body.email, caller)


@router.post("/password/reset", status_code=status.HTTP_204_NO_CONTENT)
async def reset_password(
    body: PasswordReset, service: AccountRecoveryServiceDep, caller: CallerDep
) -> None:
    """Set a new password from a reset link; every session of the account ends."""
    await service.reset_password(body.token, body.new_password, caller)
