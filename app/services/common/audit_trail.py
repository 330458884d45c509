"""The security audit trail: services record events inside their own transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.models import AuditEvent
from app.repositories import AuditEventRepository
from app.services.common.authorization import Actor
from app.services.common.caller import Caller


class AuditEventType(StrEnum):
    user_registered = "user.registered"
    login_succeeded = "login.succeeded"
    login_failed = "login.failed"
    logout = "logout"
    logout_all = "logout.all"
    session_ended = "session.ended"
    token_revoked = "token.revoked"
    refresh_token_reused = "refresh_token.reused"
    password_changed = "password.changed"
    password_reset_requested = "password.reset_requested"
    password_reset = "password.reset"
    email_verified = "email.verified"
    # A verification or reset link that was expired, used, forged or for another purpose.
    one_time_token_refused = "one_time_token.refused"
    email_changed = "email.changed"
    profile_updated = "profile.updated"
    # A first factor was right for an account with a second factor: an `mfa_token` was issued.
    mfa_challenged = "login.mfa_required"
    mfa_enrolment_started = "mfa.enrolment_started"
    mfa_enabled = "mfa.enabled"
    mfa_disabled = "mfa.disabled"
    recovery_codes_regenerated = "mfa.recovery_codes_regenerated"
    recovery_code_used = "mfa.recovery_code_used"
    mfa_reset = "mfa.reset"  # by an administrator
    # The OpenID Provider: a user granted a third-party client scopes (the consent page), or
    # took the grant back; an authorization code came back after its redemption.
    client_granted = "grant.given"
    client_grant_revoked = "grant.revoked"
    authorization_code_reused = "authorization_code.reused"
    oauth_login = "oauth.login"
    oauth_linked = "oauth.linked"
    oauth_unlinked = "oauth.unlinked"
    oauth_link_refused = "oauth.link_refused"
    # Administration: `actor_id` names the admin, `user_id` the account changed (if any).
    user_created = "user.created"
    user_updated = "user.updated"
    user_activated = "user.activated"
    user_deactivated = "user.deactivated"
    user_deleted = "user.deleted"
    user_roles_changed = "user.roles_changed"
    user_sessions_ended = "user.sessions_ended"
    superuser_granted = "user.superuser_granted"
    superuser_revoked = "user.superuser_revoked"
    role_created = "role.created"
    role_updated = "role.updated"
    role_deleted = "role.deleted"
    role_permissions_changed = "role.permissions_changed"
    permission_created = "permission.created"
    permission_updated = "permission.updated"
    permission_deleted = "permission.deleted"
    client_created = "client.created"
    client_updated = "client.updated"
    client_deleted = "client.deleted"
    client_authentication_failed = "client.authentication_failed"
    # A refused call to an admin route: `actor_id` is the caller if known, else None.
    access_denied = "access.denied"


class AuditTrail:
    """Appends audit events through the caller's session; the caller's commit keeps them."""

    def __init__(self, session: AsyncSession) -> None:
        self.events = AuditEventRepository(session)

    async def record(
        self,
        event_type: AuditEventType,
        *,
        caller: Caller | None = None,
        user_id: uuid.UUID | None = None,
        actor_id: uuid.UUID | None = None,
        **details: Any,
    ) -> AuditEvent:
        """One event about `user_id` (the account concerned), done by `actor_id`.

        The actor is whoever the request authenticated: the signed-in user for their own
        changes, the user who has just proved a credential for a sign-in, and None for
        anonymous callers (a failed sign-in, a mailed link redeemed). It never defaults to the
        account concerned: a stranger's failed sign-in must not read as its owner's act.
        """
        caller = caller or Caller()
        return await self.events.create(
            type=event_type.value,
            user_id=user_id,
            actor_id=actor_id,
            ip=caller.ip,
            user_agent=caller.user_agent_truncated,
            details=details,
        )

    async def record_admin(
        self,
        event_type: AuditEventType,
        actor: Actor,
        *,
        caller: Caller | None = None,
        user_ids: Iterable[uuid.UUID | None] = (None,),
        **details: Any,
    ) -> None:
        """One event per affected user (or one without a user), naming the admin who acted;
        written with a single flush however many users a bulk action touched."""
        caller = caller or Caller()
        if actor.client_id is not None:
            details = {**details, "via": "client", "actor_client_id": actor.client_id}
        elif actor.id is None:
            details = {**details, "via": "cli"}
        await self.events.add_all(
            AuditEvent(
                type=event_type.value,
                user_id=user_id,
                actor_id=actor.id,
                ip=caller.ip,
                user_agent=caller.user_agent_truncated,
                details=details,
            )
            for user_id in user_ids
        )
