"""Repositories: one per entity over the request's `AsyncSession`. They flush, never commit."""

from app.repositories.action_tokens import ActionTokenRepository
from app.repositories.audit_events import AuditEventRepository
from app.repositories.base import BaseRepository, Page, UniqueViolation
from app.repositories.oauth_accounts import OAuthAccountRepository
from app.repositories.oauth_states import OAuthStateRepository
from app.repositories.revoked_access_tokens import RevokedAccessTokenRepository
from app.repositories.roles import PermissionRepository, RoleRepository
from app.repositories.service_clients import ServiceClientRepository
from app.repositories.sessions import RefreshTokenRepository, SessionRepository
from app.repositories.users import UserRepository

__all__ = [
    "ActionTokenRepository",
    "AuditEventRepository",
    "BaseRepository",
    "OAuthAccountRepository",
    "OAuthStateRepository",
    "Page",
    "PermissionRepository",
    "RefreshTokenRepository",
    "RevokedAccessTokenRepository",
    "RoleRepository",
    "ServiceClientRepository",
    "SessionRepository",
    "UniqueViolation",
    "UserRepository",
]
