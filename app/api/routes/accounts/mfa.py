"""Two-step sign-in for the signed-in user: a TOTP authenticator and recovery codes."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.api.deps import CallerDep, MfaServiceDep, PrincipalDep
from app.api.problem_docs import problem_responses
from app.schemas.accounts import (
    MfaStatusRead,
    RecoveryCodesRead,
    TotpConfirmation,
    TotpEnrolmentRead,
)

router = APIRouter(
    prefix="/users/me/mfa",
    tags=["me"],
    responses=problem_responses(400, 401, 404, 409, 422, 429, 503),
)


@router.get("", response_model=MfaStatusRead)
async def read_mfa(principal: PrincipalDep, service: MfaServiceDep) -> MfaStatusRead:
    """Whether an authenticator is on, and how many unused recovery codes are left."""
    mfa = await service.status(principal.user.id)
    return MfaStatusRead(totp=mfa.totp, recovery_codes_remaining=mfa.recovery_codes_remaining)


@router.post("/totp", response_model=TotpEnrolmentRead, status_code=status.HTTP_201_CREATED)
async def start_totp(
    principal: PrincipalDep, service: MfaServiceDep, caller: CallerDep, response: Response
) -> TotpEnrolmentRead:
    """Start enrolling an authenticator app; it is pending until confirmed with a code.
    Needs a recent sign-in (401 `insufficient_user_authentication` otherwise); 409 when one
    is already on. Starting again replaces a pending one."""
    response.headers["Cache-Control"] = "no-store"  # the body holds the shared secret
    enrolment = await service.start_totp(principal.user.id, principal.claims, caller=caller)
    return TotpEnrolmentRead(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@router.post("/totp/confirm", response_model=RecoveryCodesRead)
async def confirm_totp(
    body: TotpConfirmation,
    principal: PrincipalDep,
    service: MfaServiceDep,
    caller: CallerDep,
    response: Response,
) -> RecoveryCodesRead:
    """Turn two-step sign-in on with the authenticator's current code: answers the recovery
    codes, shown this once. Every other session of the account ends. A wrong code is a failed
    sign-in (400, and counted against the sign-in limits)."""
    response.headers["Cache-Control"] = "no-store"
    codes = await service.confirm_totp(
        principal.user.id, body.code, current_session_id=principal.session_id, caller=caller
    )
    return RecoveryCodesRead(recovery_codes=codes)


@router.delete("/totp", status_code=status.HTTP_204_NO_CONTENT)
async def remove_totp(principal: PrincipalDep, service: MfaServiceDep, caller: CallerDep) -> None:
    """Turn two-step sign-in off (the recovery codes go too). Needs a step-up: a sign-in
    with the second factor within `AUTH_REAUTH_MAX_AGE_SECONDS` (else 401
    `insufficient_user_authentication`, `acr_values="aal2"`)."""
    await service.remove_totp(principal.user.id, principal.claims, caller=caller)


@router.post("/recovery-codes", response_model=RecoveryCodesRead)
async def new_recovery_codes(
    principal: PrincipalDep, service: MfaServiceDep, caller: CallerDep, response: Response
) -> RecoveryCodesRead:
    """A new set of recovery codes, voiding the old one. Needs a step-up."""
    response.headers["Cache-Control"] = "no-store"
    codes = await service.new_recovery_codes(principal.user.id, principal.claims, caller=caller)
    return RecoveryCodesRead(recovery_codes=codes)
