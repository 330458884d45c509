"""`require_permissions`: the guard on every admin route.

401 without a valid, current access token; 403 without the permissions. Superusers pass every
check. A user's permissions are read from the database on each request, never from the token.
A service client's token (client-credentials grant) acts with the scopes it was issued that
the client still holds: permission codenames, as an Auth0 management client would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from app.api.deps import AuditLogDep, ClientInfoDep, bearer_scheme
from app.observability.metrics import route_template
from app.runtime import runtime_of
from app.services.audit_log import DenialReason
from app.services.authentication import Authenticator, NotAuthenticated
from app.services.authorization import Actor, BuiltinPermission, MissingPermission, require


def require_permissions(*codenames: str) -> Callable[..., Awaitable[Actor]]:
    """A dependency that returns the calling `Actor` if they hold every one of `codenames`.

    A refusal is recorded as an `access.denied` audit event (caller, IP, route, reason) before
    the 401 or 403 goes out.
    """
    required = frozenset(codenames)

    async def actor_holding_permissions(
        request: Request,
        token: Annotated[str | None, Depends(bearer_scheme)],
        client: ClientInfoDep,
        audit: AuditLogDep,
    ) -> Actor:
        actor = None
        try:
            if not token:
                raise NotAuthenticated
            actor = await _calling_actor(request, token)
            require(actor, required)
        except (NotAuthenticated, MissingPermission):
            if actor is not None:
                reason = DenialReason.missing_permission
            else:
                reason = DenialReason.invalid_token if token else DenialReason.no_token
            await audit.record_access_denied(
                reason,
                method=request.method,
                route=route_template(request.scope),
                client=client,
                actor=actor,
                required=required,
            )
            raise
        return actor

    return actor_holding_permissions


async def _calling_actor(request: Request, token: str) -> Actor:
    """The user or service client behind `token`, with what they may do right now."""
    runtime = runtime_of(request.app)
    authenticator = Authenticator(runtime.engine, runtime.token_codec)
    claims = authenticator.decode(token)
    if "sid" not in claims:  # a service client's own token (client-credentials grant)
        scopes = await authenticator.client_scopes(claims)
        return Actor(id=None, is_superuser=False, permissions=scopes, client_id=str(claims["sub"]))
    user = (await authenticator.principal_for(claims)).user
    permissions: frozenset[str] = frozenset()
    if not user.is_superuser:
        permissions = await authenticator.permissions_of(user)
    return Actor(id=user.id, is_superuser=user.is_superuser, permissions=permissions)


UsersReader = Annotated[Actor, Depends(require_permissions(BuiltinPermission.users_read))]
UsersWriter = Annotated[Actor, Depends(require_permissions(BuiltinPermission.users_write))]
RolesReader = Annotated[Actor, Depends(require_permissions(BuiltinPermission.roles_read))]
RolesWriter = Annotated[Actor, Depends(require_permissions(BuiltinPermission.roles_write))]
ClientsWriter = Annotated[Actor, Depends(require_permissions(BuiltinPermission.clients_write))]
AuditReader = Annotated[Actor, Depends(require_permissions(BuiltinPermission.audit_read))]
