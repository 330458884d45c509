"""ORM models, one module per aggregate. Importing this package registers every table."""

from app.models.action_token import ActionPurpose, ActionToken
from app.models.audit_event import AuditEvent
from app.models.authorization import AuthorizationCode, ClientGrant
from app.models.base import Base
from app.models.mfa import MfaChallenge, RecoveryCode, TotpFactor
from app.models.oauth_account import OAuthAccount
from app.models.oauth_state import OAuthState
from app.models.outbox_message import OutboxKind, OutboxMessage
from app.models.rbac import Permission, Role, role_permissions, user_roles
from app.models.revoked_access_token import RevokedAccessToken
from app.models.service_client import ServiceClient
from app.models.signing_key import SigningKeyRing, StoredSigningKey
from app.models.user import User
from app.models.user_session import RefreshToken, UserSession

__all__ = [
    "ActionPurpose",
    "ActionToken",
    "AuditEvent",
    "AuthorizationCode",
    "Base",
    "ClientGrant",
    "MfaChallenge",
    "OAuthAccount",
    "OAuthState",
    "OutboxKind",
    "OutboxMessage",
    "Permission",
    "RecoveryCode",
    "RefreshToken",
    "RevokedAccessToken",
    "Role",
    "ServiceClient",
    "SigningKeyRing",
    "StoredSigningKey",
    "TotpFactor",
    "User",
    "UserSession",
    "role_permissions",
    "user_roles",
]
