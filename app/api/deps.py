"""FastAPI dependencies shared by the routers: settings, session, services, the caller.

Every dependency is `async def` although none awaits: FastAPI runs plain `def` dependencies
on a worker thread, a hop that cost a sign-in dozens of thread switches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.api.client_ip import client_ip
from app.config import Settings
from app.db import get_session
from app.mail import MailDispatcher, OutgoingEmail
from app.security.access_tokens import AccessTokenCodec
from app.security.passwords import PasswordHasher
from app.services.accounts.account import AccountService
from app.services.accounts.recovery import AccountRecoveryService
from app.services.accounts.registration import RegistrationService
from app.services.admin.audit_log import AuditLogService
from app.services.admin.roles import RoleAdminService
from app.services.admin.service_clients import ClientAdminService
from app.services.admin.users import UserAdminService
from app.services.common.caller import Caller
from app.services.common.context import ServiceContext
from app.services.common.deferred import Job
from app.services.common.rate_limits import RateLimiter
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
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_clock(request: Request) -> Callable[[], datetime]:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


async def get_token_codec(request: Request) -> AccessTokenCodec:
    codec: AccessTokenCodec = request.app.state.token_codec
    return codec


async def get_password_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.password_hasher
    return hasher


async def get_rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


class BackgroundMailOutbox:
    """Delivers queued mail after the response is sent: no transaction is held open for
    SMTP, and a mail server hiccup never fails the request (the dispatcher retries and logs)."""

    def __init__(self, tasks: BackgroundTasks, dispatcher: MailDispatcher) -> None:
        self.tasks = tasks
        self.dispatcher = dispatcher

    def send_later(self, email: OutgoingEmail) -> None:
        self.tasks.add_task(self.dispatcher.deliver, email)


async def get_outbox(request: Request, tasks: BackgroundTasks) -> BackgroundMailOutbox:
    return BackgroundMailOutbox(tasks, request.app.state.mail_dispatcher)


class BackgroundDeferredWork:
    """Runs deferred jobs after the response, each on a session of its own. Mail a job queues
    goes out after it: the background tasks run in order, including ones added meanwhile."""

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
    return BackgroundDeferredWork(tasks, request.app.state.session_factory)


async def get_caller(request: Request) -> Caller:
    # X-Forwarded-For counts only from the proxies in AUTH_TRUSTED_PROXIES (parsed once by
    # install_hardening); an app built without it trusts none.
    trusted = getattr(request.app.state, "trusted_proxies", ())
    return Caller(
        ip=client_ip(request, trusted),
        user_agent=request.headers.get("user-agent"),
    )


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]
CodecDep = Annotated[AccessTokenCodec, Depends(get_token_codec)]
HasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]
CallerDep = Annotated[Caller, Depends(get_caller)]
OutboxDep = Annotated[BackgroundMailOutbox, Depends(get_outbox)]
DeferredWorkDep = Annotated[BackgroundDeferredWork, Depends(get_deferred_work)]
LimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]


async def get_service_context(
    request: Request,
    settings: SettingsDep,
    hasher: HasherDep,
    clock: ClockDep,
    limiter: LimiterDep,
    outbox: OutboxDep,
    deferred: DeferredWorkDep,
) -> ServiceContext:
    return ServiceContext(
        settings=settings,
        hasher=hasher,
        limiter=limiter,
        outbox=outbox,
        deferred=deferred,
        audit_hmac=request.app.state.audit_hmac,
        clock=clock,
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
    session: SessionDep, context: ContextDep, codec: CodecDep, engine: EngineDep
) -> IntrospectionService:
    return IntrospectionService(
        session, context, decoder=codec, authenticator=Authenticator(engine, codec)
    )


async def get_oauth_login_service(
    request: Request, session: SessionDep, context: ContextDep, codec: CodecDep
) -> OAuthLoginService:
    state = request.app.state
    return OAuthLoginService(
        session,
        context,
        providers=state.oauth_providers,
        http=state.oauth_http,
        issuer=TokenIssuer(codec, context.settings),
    )


async def get_account_service(session: SessionDep, context: ContextDep) -> AccountService:
    return AccountService(session, context)


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
    state = request.app.state
    return Authenticator(state.engine, state.token_codec)


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
OAuthLoginServiceDep = Annotated[OAuthLoginService, Depends(get_oauth_login_service)]
AccountServiceDep = Annotated[AccountService, Depends(get_account_service)]
AccountRecoveryServiceDep = Annotated[AccountRecoveryService, Depends(get_account_recovery_service)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
UserAdminDep = Annotated[UserAdminService, Depends(get_user_admin_service)]
RoleAdminServiceDep = Annotated[RoleAdminService, Depends(get_role_admin_service)]
ClientAdminServiceDep = Annotated[ClientAdminService, Depends(get_client_admin_service)]
AuditLogDep = Annotated[AuditLogService, Depends(get_audit_log_service)]
