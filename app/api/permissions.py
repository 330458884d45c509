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

from app.api.deps import AuditLogDep, CallerDep, authenticator, bearer_scheme
from app.observability.metrics import route_template
from app.services.admin.audit_log import DenialReason
from app.services.common.authorization import Actor, BuiltinPermission, MissingPermission, require
from app.services.tokens.bearer_authentication import NotAuthenticated


def require_permissions(*codenames: str) -> Callable[..., Awaitable[Actor]]:
    """A dependency that returns the calling `Actor` if they hold every one of `codenames`.

    A refusal is recorded as an `access.denied` audit event (caller, IP, route, reason) before
    the 401 or 403 goes out.
    """
    required = frozenset(codenames)

    async def actor_holding_permissions(
        request: Request,
        token: Annotated[str | None, Depends(bearer_scheme)],
        caller: CallerDep,
        audit: AuditLogDep,
    ) -> Actor:
        actor = None
        try:
            if not token:
                raise NotAuthenticated
            actor = await authenticator(request).actor(token)
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
                caller=caller,
                actor=actor,
                required=required,
            )
            raise
        return actor

    return actor_holding_permissions


UsersReader = Annotated[Actor, Depends(require_permissions(BuiltinPermission.users_read))]
UsersWriter = Annotated[Actor, Depends(require_permissions(BuiltinPermission.users_write))]
RolesReader = Annotated[Actor, Depends(require_permissions(BuiltinPermission.roles_read))]
RolesWriter = Annotated[Actor, Depends(require_permissions(BuiltinPermission.roles_write))]
ClientsWriter = Annotated[Actor, Depends(require_permissions(BuiltinPermission.clients_write))]
AuditReader = Annotated[Actor, Depends(require_permissions(BuiltinPermission.audit_read))]
