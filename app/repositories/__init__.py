"""Repositories: one per entity over the request's `AsyncSession`. They flush, never commit."""

from app.repositories.accounts.action_tokens import ActionTokenRepository
from app.repositories.accounts.second_factors import RecoveryCodeRepository, TotpFactorRepository
from app.repositories.accounts.users import UserRepository
from app.repositories.admin.roles import PermissionRepository, RoleRepository
from app.repositories.admin.service_clients import ServiceClientRepository
from app.repositories.authorization.authorization_codes import AuthorizationCodeRepository
from app.repositories.authorization.client_grants import ClientGrantRepository
from app.repositories.common.audit_events import AuditEventRepository
from app.repositories.common.base import BaseRepository, Page, UniqueViolation
from app.repositories.oauth.oauth_accounts import OAuthAccountRepository
from app.repositories.oauth.oauth_states import OAuthStateRepository
from app.repositories.tokens.mfa_challenges import MfaChallengeRepository
from app.repositories.tokens.revoked_access_tokens import RevokedAccessTokenRepository
from app.repositories.tokens.sign_in_sessions import RefreshTokenRepository, SignInSessionRepository
from app.repositories.tokens.signing_keys import SigningKeyRepository

__all__ = [
    "ActionTokenRepository",
    "AuditEventRepository",
    "AuthorizationCodeRepository",
    "BaseRepository",
    "ClientGrantRepository",
    "MfaChallengeRepository",
    "OAuthAccountRepository",
    "OAuthStateRepository",
    "Page",
    "PermissionRepository",
    "RecoveryCodeRepository",
    "RefreshTokenRepository",
    "RevokedAccessTokenRepository",
    "RoleRepository",
    "ServiceClientRepository",
    "SignInSessionRepository",
    "SigningKeyRepository",
    "TotpFactorRepository",
    "UniqueViolation",
    "UserRepository",
]
