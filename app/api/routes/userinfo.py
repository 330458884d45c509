"""OpenID Connect userinfo (OIDC Core 5.3), GET or POST with a bearer access token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import PrincipalDep
from app.api.oauth_errors import NO_STORE
from app.api.problem_docs import problem_responses
from app.schemas.userinfo import UserInfoBody
from app.services.tokens.userinfo import userinfo_claims

router = APIRouter(prefix="/oauth", tags=["openid"], responses=problem_responses(401, 403, 503))


@router.get("/userinfo", response_model=UserInfoBody)
@router.post("/userinfo", response_model=UserInfoBody)
async def userinfo(principal: PrincipalDep) -> JSONResponse:
    """The claims about the signed-in user that the access token's scopes allow (`openid`
    is required: 403 `insufficient_scope` without it), as the account is now. The token
    travels in the `Authorization` header only; an ended session or revoked token is 401
    `invalid_token`."""
    return JSONResponse(userinfo_claims(principal), headers=NO_STORE)
