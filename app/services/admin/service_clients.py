"""Registered clients: machines that obtain tokens with the client-credentials grant, and the
applications users sign in to (grant types, redirect URIs, authentication method and
first-party flag: see `client_registration` for their rules).

A client's scopes are permission codenames (what its tokens may do) or one of the service's own
scopes (`introspect`: may call the RFC 7662 introspection endpoint). Nobody creates a client
stronger than themselves: every permission among the scopes must be held by the creator.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Conflict, InvalidInput, NotFound, Unprocessable
from app.models import ServiceClient
from app.repositories import Page, PermissionRepository, ServiceClientRepository
from app.security.client_secrets import client_secret_digest, new_client_id, new_client_secret
from app.services.admin.client_registration import (
    DEFAULT_AUTH_METHOD,
    DEFAULT_GRANT_TYPES,
    ClientRegistration,
    checked_registration,
)
from app.services.common.audit_trail import AuditEventType, AuditTrail
from app.services.common.authorization import Actor, BuiltinPermission, require, require_grantable
from app.services.common.caller import Caller
from app.services.common.context import Service, ServiceContext
from app.services.common.unit_of_work import unit_of_work

INTROSPECT_SCOPE = "introspect"
# Scopes that are not permissions, each with the permission needed to grant it.
SERVICE_SCOPES: dict[str, str] = {INTROSPECT_SCOPE: BuiltinPermission.clients_write}
NAME_MAX_LENGTH = 200


class ClientNotFound(NotFound):
    default_detail = "No service client has this client_id."


class UnknownScope(Unprocessable):
    def __init__(self, scopes: Iterable[str]) -> None:
        super().__init__(
            f"Unknown scope: {', '.join(sorted(scopes))}. A scope is a permission codename "
            f"or one of: {', '.join(sorted(SERVICE_SCOPES))}."
        )


class ClientIdTaken(Conflict):
    default_detail = "This client_id is a public client's (AUTH_PUBLIC_CLIENTS)."


class InvalidClientName(InvalidInput):
    default_detail = f"The client name must be 1 to {NAME_MAX_LENGTH} characters."


def _unique(values: Iterable[str]) -> list[str]:
    """`values` stripped, without blanks or repeats, in their first order."""
    return list(dict.fromkeys(value.strip() for value in values if value.strip()))


def _columns(registration: ClientRegistration) -> dict[str, object]:
    """The registration as the client's column values."""
    return {
        "grant_types": registration.grant_types,
        "redirect_uris": registration.redirect_uris,
        "post_logout_redirect_uris": registration.post_logout_redirect_uris,
        "token_endpoint_auth_method": registration.token_endpoint_auth_method.value,
        "is_first_party": registration.is_first_party,
    }


class ClientAdminService(Service):
    def __init__(self, session: AsyncSession, context: ServiceContext) -> None:
        super().__init__(session, context)
        self.clients = ServiceClientRepository(session)
        self.permissions = PermissionRepository(session)
        self.audit = AuditTrail(session)

    async def create(
        self,
        actor: Actor,
        *,
        name: str,
        scopes: Iterable[str],
        audiences: Iterable[str],
        grant_types: Iterable[str] = DEFAULT_GRANT_TYPES,
        redirect_uris: Iterable[str] = (),
        post_logout_redirect_uris: Iterable[str] = (),
        token_endpoint_auth_method: str = DEFAULT_AUTH_METHOD,
        is_first_party: bool = False,
        caller: Caller,
    ) -> tuple[ServiceClient, str | None]:
        """Register a client; return it with its secret, which is stored only as a digest
        and so can never be shown again (None for a public client, which has none)."""
        require(actor, [BuiltinPermission.clients_write])
        name = name.strip()
        if not 1 <= len(name) <= NAME_MAX_LENGTH:
            raise InvalidClientName
        registration = checked_registration(
            grant_types=grant_types,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
            token_endpoint_auth_method=token_endpoint_auth_method,
            is_first_party=is_first_party,
        )
        requested = _unique(scopes)
        client_id = new_client_id()
        secret = None if registration.is_public else new_client_secret()
        # A public client uses the grants without a secret: a service client of the same id
        # would be impersonated by anyone naming it.
        if client_id in self.settings.public_clients:
            raise ClientIdTaken
        async with unit_of_work(self.session):
            await self._require_grantable_scopes(actor, requested)
            service_client = await self.clients.create(
                client_id=client_id,
                name=name,
                secret_hash=None if secret is None else client_secret_digest(secret),
                scopes=requested,
                audiences=_unique(audiences),
                **_columns(registration),
                created_by_id=actor.id,
            )
            await self.audit.record_admin(
                AuditEventType.client_created,
                actor,
                caller=caller,
                client_id=service_client.client_id,
                name=name,
                scopes=requested,
                grant_types=registration.grant_types,
                token_endpoint_auth_method=registration.token_endpoint_auth_method.value,
                is_first_party=registration.is_first_party,
            )
        return service_client, secret

    async def list_clients(
        self, actor: Actor, *, limit: int, cursor: str | None = None
    ) -> Page[ServiceClient]:
        """A page of clients, newest first."""
        require(actor, [BuiltinPermission.clients_write])
        return await self.clients.list_page(limit=limit, cursor=cursor, newest_first=True)

    async def get(self, actor: Actor, client_id: str) -> ServiceClient:
        require(actor, [BuiltinPermission.clients_write])
        service_client = await self.clients.get_by_client_id(client_id)
        if service_client is None:
            raise ClientNotFound
        return service_client

    async def update(
        self,
        actor: Actor,
        client_id: str,
        *,
        name: str | None = None,
        is_active: bool | None = None,
        scopes: Iterable[str] | None = None,
        audiences: Iterable[str] | None = None,
        grant_types: Iterable[str] | None = None,
        redirect_uris: Iterable[str] | None = None,
        post_logout_redirect_uris: Iterable[str] | None = None,
        token_endpoint_auth_method: str | None = None,
        is_first_party: bool | None = None,
        caller: Caller,
    ) -> ServiceClient:
        """Rename, enable or disable a client, or change its scopes, audiences, grant types,
        redirect URIs, authentication method or first-party flag (None leaves a field as it
        is; the client as changed must meet `checked_registration`'s rules). A disabled
        client gets no tokens, and the tokens it holds turn inactive at once. A client stays
        public or confidential: its secret, if any, was shown at creation only."""
        require(actor, [BuiltinPermission.clients_write])
        values: dict[str, object] = {"name": name, "is_active": is_active}
        if scopes is not None:
            values["scopes"] = _unique(scopes)
        if audiences is not None:
            values["audiences"] = _unique(audiences)
        changes = {
            "grant_types": grant_types,
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": post_logout_redirect_uris,
            "token_endpoint_auth_method": token_endpoint_auth_method,
            "is_first_party": is_first_party,
        }
        given = {field for field, value in changes.items() if value is not None}
        async with unit_of_work(self.session):
            service_client = await self.clients.get_by_client_id(client_id)
            if service_client is None:
                raise ClientNotFound
            if given:
                stored = service_client  # what a field left out keeps
                registration = checked_registration(
                    grant_types=stored.grant_types if grant_types is None else grant_types,
                    redirect_uris=stored.redirect_uris if redirect_uris is None else redirect_uris,
                    post_logout_redirect_uris=(
                        stored.post_logout_redirect_uris
                        if post_logout_redirect_uris is None
                        else post_logout_redirect_uris
                    ),
                    token_endpoint_auth_method=(
                        stored.token_endpoint_auth_method
                        if token_endpoint_auth_method is None
                        else token_endpoint_auth_method
                    ),
                    is_first_party=(
                        stored.is_first_party if is_first_party is None else is_first_party
                    ),
                    given=given,
                    previous_auth_method=stored.token_endpoint_auth_method,
                )
                columns = _columns(registration)
                values.update({field: columns[field] for field in given})
            if scopes is not None:
                added = set(_unique(scopes)) - set(service_client.scopes)
                await self._require_grantable_scopes(actor, sorted(added))
            values = {
                field: value
                for field, value in values.items()
                if value is not None and getattr(service_client, field) != value
            }
            if values:
                await self.clients.update(service_client, **values)
                await self.audit.record_admin(
                    AuditEventType.client_updated,
                    actor,
                    caller=caller,
                    client_id=client_id,
                    fields=sorted(values),
                )
        return service_client

    async def delete(self, actor: Actor, client_id: str, *, caller: Caller) -> None:
        """Remove a client, so its credentials stop working."""
        require(actor, [BuiltinPermission.clients_write])
        async with unit_of_work(self.session):
            service_client = await self.clients.get_by_client_id(client_id)
            # A concurrent delete may win between the read and ours: then ours removes nothing.
            if service_client is None or not await self.clients.delete(service_client.id):
                raise ClientNotFound
            await self.audit.record_admin(
                AuditEventType.client_deleted,
                actor,
                caller=caller,
                client_id=client_id,
                name=service_client.name,
            )

    async def _require_grantable_scopes(self, actor: Actor, scopes: list[str]) -> None:
        codenames = [scope for scope in scopes if scope not in SERVICE_SCOPES]
        known = await self.permissions.list_by_codenames(codenames) if codenames else []
        unknown = set(codenames) - {permission.codename for permission in known}
        if unknown:
            raise UnknownScope(unknown)
        needed = {SERVICE_SCOPES[scope] for scope in scopes if scope in SERVICE_SCOPES}
        require_grantable(actor, {*codenames, *needed})
