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

from app.api.deps import bearer_scheme
from app.services.authentication import Authenticator, NotAuthenticated
from app.services.authorization import Actor, BuiltinPermission, require


def require_permissions(*codenames: str) -> Callable[..., Awaitable[Actor]]:
    """A dependency that returns the calling `Actor` if they hold every one of `codenames`."""
    required = frozenset(codenames)

    async def actor_holding_permissions(
        request: Request, token: Annotated[str | None, Depends(bearer_scheme)]
    ) -> Actor:
        if not token:
            raise NotAuthenticated
        state = request.app.state
        authenticator = Authenticator(state.engine, state.token_codec)
        claims = authenticator.decode(token)
        if "sid" not in claims:  # a service client's own token (client-credentials grant)
            scopes = await authenticator.client_scopes(claims)
            actor = Actor(
                id=None, is_superuser=False, permissions=scopes, client_id=str(claims["sub"])
            )
        else:
            user = (await authenticator.principal_for(claims)).user
            permissions: frozenset[str] = frozenset()
            if not user.is_superuser:
                permissions = await authenticator.permissions_of(user)
            actor = Actor(id=user.id, is_superuser=user.is_superuser, permissions=permissions)
        require(actor, required)
        return actor

    return actor_holding_permissions


UsersReader = Annotated[Actor, Depends(require_permissions(BuiltinPermission.users_read))]
UsersWriter = Annotated[Actor, Depends(require_permissions(BuiltinPermission.users_write))]
RolesReader = Annotated[Actor, Depends(require_permissions(BuiltinPermission.roles_read))]
RolesWriter = Annotated[Actor, Depends(require_permissions(BuiltinPermission.roles_write))]
ClientsWriter = Annotated[Actor, Depends(require_permissions(BuiltinPermission.clients_write))]
AuditReader = Annotated[Actor, Depends(require_permissions(BuiltinPermission.audit_read))]
