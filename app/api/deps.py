"""FastAPI dependencies shared by the routers: settings, session, services, the caller.

They read the app's `Runtime` (`runtime_of`) directly. Every dependency is `async def`
although none awaits: FastAPI runs plain `def` dependencies on a worker thread, a hop that cost
a sign-in dozens of thread switches.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.api.client_ip import client_ip
from app.config import Settings
from app.runtime import runtime_of
from app.security.access_tokens import AccessTokenCodec
from app.services.accounts.account import AccountService
from app.services.accounts.mfa import MfaService
from app.services.accounts.recovery import AccountRecoveryService
from app.services.accounts.registration import RegistrationService
from app.services.admin.audit_log import AuditLogService
from app.services.admin.roles import RoleAdminService
from app.services.admin.service_clients import ClientAdminService
from app.services.admin.users import UserAdminService
from app.services.authorization.authorization_service import AuthorizationService
from app.services.authorization.user_grants import UserGrantsService
from app.services.common.caller import Caller
from app.services.common.context import ServiceContext
from app.services.common.deferred import Job
from app.services.oauth.login import OAuthLoginService
from app.services.tokens.bearer_authentication import Authenticator, NotAuthenticated, Principal
from app.services.tokens.introspection import IntrospectionService
from app.services.tokens.revocation import RevocationService
from app.services.tokens.sign_out import SignOutService
from app.services.tokens.token_issuer import TokenIssuer
from app.services.tokens.token_service import TokenService

logger = logging.getLogger(__name__)


async def get_app_settings(request: Request) -> Settings:
    """The settings the running app was built with (tests build apps with their own)."""
    return runtime_of(request.app).settings


async def get_engine(request: Request) -> AsyncEngine:
    return runtime_of(request.app).engine


async def get_token_codec(request: Request) -> AccessTokenCodec:
    return runtime_of(request.app).token_codec


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One `AsyncSession` per request, closed after the response."""
    async with runtime_of(request.app).session_factory() as session:
        yield session


class BackgroundDeferredWork:
    """Runs deferred jobs after the response, each on a session of its own (mail a job
    queues goes into the outbox in the job's own transaction)."""

    def __init__(
        self, tasks: BackgroundTasks, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        self.tasks = tasks
        self.session_factory = session_factory

    def run_later(self, job: Job) -> None:
        self.tasks.add_task(self._run, job)

    async def _run(self, job: Job) -> None:
        try:
            async with self.session_factory() as session:
                await job(session)
        except Exception:
            logger.exception("deferred work failed")


async def get_deferred_work(request: Request, tasks: BackgroundTasks) -> BackgroundDeferredWork:
    return BackgroundDeferredWork(tasks, runtime_of(request.app).session_factory)


async def get_caller(request: Request) -> Caller:
    # X-Forwarded-For counts only from the proxies in AUTH_TRUSTED_PROXIES.
    return Caller(
        ip=client_ip(request, runtime_of(request.app).trusted_proxies),
        user_agent=request.headers.get("user-agent"),
    )


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
CodecDep = Annotated[AccessTokenCodec, Depends(get_token_codec)]
CallerDep = Annotated[Caller, Depends(get_caller)]
DeferredWorkDep = Annotated[BackgroundDeferredWork, Depends(get_deferred_work)]


async def get_service_context(request: Request, deferred: DeferredWorkDep) -> ServiceContext:
    runtime = runtime_of(request.app)
    return ServiceContext(
        settings=runtime.settings,
        hasher=runtime.password_hasher,
        limiter=runtime.rate_limiter,
        outbox=runtime.mail_outbox,
        deferred=deferred,
        audit_hmac=runtime.audit_hmac,
        clock=runtime.clock,
        data_encryptor=runtime.load_data_encryptor,
    )


ContextDep = Annotated[ServiceContext, Depends(get_service_context)]


async def get_token_service(
    session: SessionDep, context: ContextDep, codec: CodecDep
) -> TokenService:
    return TokenService(session, context, issuer=TokenIssuer(codec, context.settings))


async def get_registration_service(session: SessionDep, context: ContextDep) -> RegistrationService:
    return RegistrationService(session, context)


async def get_sign_out_service(session: SessionDep, context: ContextDep) -> SignOutService:
    return SignOutService(session, context)


async def get_revocation_service(
    session: SessionDep, context: ContextDep, codec: CodecDep
) -> RevocationService:
    return RevocationService(session, context, decoder=codec)


async def get_introspection_service(
    request: Request, session: SessionDep, context: ContextDep, codec: CodecDep, engine: EngineDep
) -> IntrospectionService:
    return IntrospectionService(
        session,
        context,
        decoder=codec,
        authenticator=Authenticator(engine, codec, runtime_of(request.app).token_state_cache),
    )


async def get_authorization_service(
    session: SessionDep, context: ContextDep
) -> AuthorizationService:
    return AuthorizationService(session, context)


async def get_user_grants_service(session: SessionDep, context: ContextDep) -> UserGrantsService:
    return UserGrantsService(session, context)


async def get_oauth_login_service(
    request: Request, session: SessionDep, context: ContextDep, codec: CodecDep
) -> OAuthLoginService:
    runtime = runtime_of(request.app)
    return OAuthLoginService(
        session,
        context,
        providers=runtime.oauth_providers,
        http=runtime.oauth_http,
        issuer=TokenIssuer(codec, context.settings),
    )


async def get_account_service(session: SessionDep, context: ContextDep) -> AccountService:
    return AccountService(session, context)


async def get_mfa_service(session: SessionDep, context: ContextDep) -> MfaService:
    return MfaService(session, context)


async def get_account_recovery_service(
    session: SessionDep, context: ContextDep
) -> AccountRecoveryService:
    return AccountRecoveryService(session, context)


# Reads the `Authorization: Bearer` header only: tokens in query strings are ignored. The
# tokenUrl makes Swagger UI's Authorize button sign in through the password grant.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)


def authenticator(request: Request) -> Authenticator:
    """The one place that works out who is calling, for `get_principal` and the admin
    routes' permission guard. A plain function, not a dependency: every dependency FastAPI
    resolves costs time on the path that every authenticated request takes."""
    runtime = runtime_of(request.app)
    return Authenticator(runtime.engine, runtime.token_codec, runtime.token_state_cache)


async def get_principal(
    request: Request, token: Annotated[str | None, Depends(bearer_scheme)]
) -> Principal:
    """The signed-in caller; 401 without a valid, current access token."""
    if not token:
        raise NotAuthenticated
    return await authenticator(request).authenticate(token)


async def get_user_admin_service(session: SessionDep, context: ContextDep) -> UserAdminService:
    return UserAdminService(session, context)


async def get_role_admin_service(session: SessionDep, context: ContextDep) -> RoleAdminService:
    return RoleAdminService(session, context)


async def get_client_admin_service(session: SessionDep, context: ContextDep) -> ClientAdminService:
    return ClientAdminService(session, context)


async def get_audit_log_service(session: SessionDep, context: ContextDep) -> AuditLogService:
    return AuditLogService(session, context)


TokenServiceDep = Annotated[TokenService, Depends(get_token_service)]
RegistrationServiceDep = Annotated[RegistrationService, Depends(get_registration_service)]
SignOutServiceDep = Annotated[SignOutService, Depends(get_sign_out_service)]
RevocationServiceDep = Annotated[RevocationService, Depends(get_revocation_service)]
IntrospectionServiceDep = Annotated[IntrospectionService, Depends(get_introspection_service)]
AuthorizationServiceDep = Annotated[AuthorizationService, Depends(get_authorization_service)]
UserGrantsServiceDep = Annotated[UserGrantsService, Depends(get_user_grants_service)]
OAuthLoginServiceDep = Annotated[OAuthLoginService, Depends(get_oauth_login_service)]
AccountServiceDep = Annotated[AccountService, Depends(get_account_service)]
MfaServiceDep = Annotated[MfaService, Depends(get_mfa_service)]
AccountRecoveryServiceDep = Annotated[AccountRecoveryService, Depends(get_account_recovery_service)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
UserAdminDep = Annotated[UserAdminService, Depends(get_user_admin_service)]
RoleAdminServiceDep = Annotated[RoleAdminService, Depends(get_role_admin_service)]
ClientAdminServiceDep = Annotated[ClientAdminService, Depends(get_client_admin_service)]
AuditLogDep = Annotated[AuditLogService, Depends(get_audit_log_service)]
