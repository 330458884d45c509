"""Service configuration: one `Settings` object read from `AUTH_*` variables and `.env`."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The longest client_id a token or session records (the width of their columns).
CLIENT_ID_MAX_LENGTH = 64

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """`AUTH_TRUSTED_PROXIES` entries (IPs or CIDR networks) as networks."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


class Environment(StrEnum):
    development = "development"
    production = "production"


class OAuthProvider(BaseModel):
    """One entry of `AUTH_OAUTH_PROVIDERS`. GitHub and Google have built-in endpoints; any
    other provider is OpenID Connect, configured from its discovery document."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["github", "google", "oidc"] | None = None
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    discovery_url: str | None = None
    scopes: list[str] | None = None


class Settings(BaseSettings):
    """Every setting of the service. Field names map to `AUTH_<NAME>` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="AUTH_",
        env_file=".env",
        env_file_encoding="utf-8",
        # `AUTH_X=` (as copied from .env.example) means "not set", not an empty value.
        env_ignore_empty=True,
        extra="ignore",
    )

    # --- runtime ---
    environment: Environment = Environment.development
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "info"
    shutdown_grace_seconds: int = Field(
        default=10,
        ge=1,
        description="On SIGTERM, stop accepting and let in-flight requests finish for this long.",
    )

    # --- database ---
    database_url: str = "sqlite+aiosqlite:///./var/authsvc.db"
    auto_migrate: bool | None = Field(
        default=None,
        description="Run `alembic upgrade head` at start-up. Default: only for SQLite.",
    )
    allow_sqlite_in_production: bool = False
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_connect_timeout_seconds: float = Field(default=5.0, gt=0)
    db_statement_timeout_seconds: float = Field(
        default=15.0,
        ge=0,
        description="PostgreSQL cancels any statement running longer (0: no limit). A request "
        "stuck behind a lock or a slow query then fails with 503 instead of holding a "
        "connection. On SQLite, the wait for the writer lock is bounded by it instead.",
    )
    db_command_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait for the database on any one step: a statement, a commit or "
        "rollback, a new or a pooled connection. A step that runs out (a frozen link, a server "
        "that stopped answering) fails the request with 503 and drops that connection.",
    )
    db_echo: bool = False

    # --- replicas: worker processes, PgBouncer (issue 16; README "Running more than one
    # instance") ---
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes `authsvc serve` runs on its one port, each with its own "
        "runtime (engine and pool, hasher threads, rate limiter). `--workers` overrides it.",
    )
    db_statement_cache_size: int = Field(
        default=100,
        ge=0,
        description="Prepared statements kept per PostgreSQL connection (asyncpg's cache and "
        "SQLAlchemy's). 0 behind PgBouncer in transaction mode, whose server connections "
        "change between transactions: statements are then parsed anew each time, unnamed.",
    )

    # --- identity of this issuer ---
    issuer: str = "http://localhost:8000"
    public_url: str = "http://localhost:8000"
    frontend_url: str = "http://localhost:3000"

    # --- passwords (argon2id through passlib; OWASP minimums by default) ---
    password_min_length: int = Field(default=15, ge=8, le=64)
    password_max_length: int = Field(default=1024, ge=64, le=4096)
    # --- password strength (zxcvbn estimate; see app/security/password_strength.py) ---
    password_min_guesses: float = Field(
        default=1e10,
        ge=0,
        description="Refuse passwords estimated to fall in fewer guesses (0: no estimate).",
    )
    password_context_words: list[str] = Field(
        default_factory=list,
        description="JSON list of words attackers of this service would try (company, "
        "product, domain); passwords built from them are estimated weaker.",
    )
    service_name: str = Field(
        default="authsvc", description="The name users know this service by; a context word."
    )
    argon2_memory_cost_kib: int = Field(default=19456, ge=8)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)
    password_hash_workers: int | None = Field(
        default=None,
        ge=1,
        description="Threads hashing passwords. Default: CPUs this process may use.",
    )

    # --- tokens ---
    jwt_algorithm: Literal["RS256", "ES256", "EdDSA"] = "RS256"
    jwt_audience: str = "authsvc"
    # Public first-party clients: the operator's own frontends, which use the password and
    # refresh grants without a secret. A request naming no client at all is the first-party
    # client, whose `client_id` is stamped on its tokens; it must be one of the public ones.
    public_clients: list[str] = Field(default_factory=lambda: ["authsvc-web"])
    first_party_client_id: str = "authsvc-web"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    session_absolute_lifetime_seconds: int = Field(default=30 * 86400, ge=60)
    session_idle_timeout_seconds: int = Field(default=7 * 86400, ge=60)
    refresh_reuse_grace_seconds: int = Field(default=10, ge=0, le=300)

    # --- signing keys ---
    jwt_private_key: SecretStr | None = None
    jwt_private_key_file: Path | None = None
    # PEM public keys of retired signing keys, still published until their tokens expire.
    jwt_previous_public_keys: str | None = None
    keys_dir: Path = Path("var/keys")
    # Generate a key ring in keys_dir when none exists. Default: development only.
    jwt_keys_autogenerate: bool | None = None

    # --- throttling (limits notation, e.g. "10/15 minutes") ---
    rate_limit_enabled: bool = True
    # Namespace of the counters in Redis, so several deployments can share one Redis.
    rate_limit_key_prefix: str = "authsvc"
    # Sign-in failures (wrong passwords, current-password checks, client secrets) per
    # (account, client IP), per account from every address, and per client IP. The strict
    # limit is per (account, IP), so a stranger cannot lock the owner out.
    rate_limit_login_account_ip: str = "10/15 minutes"
    rate_limit_login_account: str = "100/hour"
    rate_limit_login_ip: str = "100/15 minutes"
    rate_limit_register_ip: str = "20/hour"
    # Verification and reset requests per client IP, per (address, client IP), and per
    # address from every IP.
    rate_limit_email_ip: str = "10/hour"
    rate_limit_email_address: str = "3/hour"
    rate_limit_email_address_total: str = "20/hour"
    # Redemptions of one-time tokens (verification and reset links) per client IP.
    rate_limit_token_ip: str = "30/15 minutes"

    # --- signing key store and rotation (app/security/keys/, services/tokens/signing_keys.py) ---
    # Where the key ring lives: `directory` (AUTH_KEYS_DIR, shared by replicas through a volume)
    # or `database` (a table; private keys encrypted under AUTH_KEY_ENCRYPTION_KEY, so a
    # replica needs only the database URL and that key).
    key_store: Literal["directory", "database"] = "directory"
    key_publish_ahead_seconds: int = Field(
        default=600,
        ge=0,
        description="`authsvc keys rotate` publishes the new key (staged) this long before it "
        "signs, so that verifiers holding a cached JWKS know it by then. At least "
        "AUTH_JWKS_MAX_AGE_SECONDS + AUTH_KEY_CHECK_INTERVAL_SECONDS.",
    )
    jwks_max_age_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="Cache-Control max-age of the JWKS and the discovery documents.",
    )
    key_check_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How often every process looks for changes of the key ring (a rotation, "
        "a retirement by another process); key state changes that are due (a staged key "
        "becoming active) happen at their time regardless.",
    )

    # --- encryption at rest (app/security/encryption.py) ---
    # Fernet keys, or comma-separated lists whose first key encrypts and all decrypt. Unset in
    # development: generated once into keys_dir. Production requires both.
    data_encryption_key: SecretStr | None = None
    key_encryption_key: SecretStr | None = None

    # --- audit trail ---
    # Key of the HMAC that stands in for the identifier of a failed sign-in. Unset: the file
    # `audit-hmac.key` in keys_dir (generated like the key ring, see app/security/audit_hmac.py).
    audit_hmac_key: SecretStr | None = None
    # At most this many denied admin calls are recorded per client IP, and in all: a flood
    # of refused requests cannot fill the audit table (the excess is counted in metrics).
    audit_access_denied_ip: str = "10/minute"
    audit_access_denied_total: str = "300/minute"

    # --- mail ---
    email_backend: Literal["console", "smtp"] = "console"
    email_from: str = "authsvc <no-reply@localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_use_tls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    verify_email_token_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    reset_password_token_ttl_seconds: int = Field(default=30 * 60, ge=60)

    # --- outbox (app/services/common/outbox.py, app/services/operations/outbox_dispatcher.py) ---
    # Mail is written to the outbox_messages table in the transaction of the change that causes
    # it, and delivered by a dispatcher in every `authsvc serve` process and in `authsvc worker`.
    outbox_retry_base_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Wait before the first retry of a failed delivery; it doubles with each "
        "failure (with jitter), up to an hour.",
    )
    outbox_max_attempts: int = Field(
        default=12,
        ge=1,
        le=100,
        description="Delivery attempts per message before it is given up (logged, counted in "
        "authsvc_outbox_failed_total, kept for a week for inspection).",
    )
    outbox_poll_interval_seconds: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="How often an idle dispatcher looks for messages it was not told about "
        "(queued by another process, or left by one that crashed).",
    )
    outbox_lease_seconds: float = Field(
        default=60.0,
        ge=1,
        description="How long a dispatcher holds the messages it claimed; a crashed "
        "dispatcher's messages are taken by another after this. A delivery is abandoned "
        "after half of it.",
    )
    outbox_batch_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description="Messages one dispatcher claims at once and delivers concurrently.",
    )

    # --- sign-in with external providers ---
    oauth_providers: dict[str, OAuthProvider] = Field(
        default_factory=dict,
        description='JSON: {"github": {"client_id": ..., "client_secret": ...}, "<name>": '
        '{"kind": "oidc", "discovery_url": ..., "client_id": ..., "client_secret": ...}}',
    )
    oauth_redirect_uris: list[str] = Field(
        default_factory=list,
        description="Allowed redirect URIs. Default: the service's own callback per provider.",
    )
    oauth_state_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    oauth_http_timeout_seconds: float = Field(default=10.0, gt=0)

    # --- recent authentication (RFC 9470) ---
    # Sensitive operations (starting a provider link, ...) need a credential proved in the
    # session (the access token's `auth_time`) at most this many seconds ago.
    reauth_max_age_seconds: int = Field(default=300, ge=30, le=86400)

    # --- multi-factor authentication (app/services/accounts/mfa.py, tokens/mfa_challenges.py) ---
    # A password (or provider) sign-in of a user with a confirmed factor answers `mfa_required`
    # with an `mfa_token`: single use, valid this long, void after this many wrong codes.
    mfa_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    mfa_max_attempts: int = Field(default=5, ge=1, le=20)
    # The issuer shown in authenticator apps (the `otpauth://` URI). Default: service_name.
    totp_issuer: str | None = Field(default=None, max_length=100)

    # --- token checks (app/services/tokens/token_state_cache.py) ---
    # How long a replica may keep what a token check read (session, user, roles, ...): a cap;
    # entries normally end the moment a change is committed anywhere. 0 turns the cache off.
    # PostgreSQL only (the change notifications are its LISTEN/NOTIFY).
    auth_cache_ttl_seconds: float = Field(default=30, ge=0, le=300)
    # Where the cache listens for changes (LISTEN): a direct PostgreSQL address, for when
    # AUTH_DATABASE_URL goes through PgBouncer in transaction mode, which keeps no LISTEN.
    # Unset: AUTH_DATABASE_URL itself, unless AUTH_DB_STATEMENT_CACHE_SIZE is 0 (the PgBouncer
    # setting): then the cache is off rather than deaf.
    auth_cache_listen_url: str | None = None

    # --- OpenID Provider (app/services/authorization/) ---
    # An authorization code is single use and lives this long (at most 60 s: RFC 6749 4.1.2
    # recommends 10 minutes at most; a browser redirect takes well under a second).
    authorization_code_ttl_seconds: int = Field(default=60, ge=5, le=60)

    # --- hosted pages branding (app/api/pages/branding.py) ---
    brand_name: str = Field(
        default="authsvc",
        min_length=1,
        max_length=100,
        description="The name the sign-in, consent and logout pages show (title, header, the "
        "logo's alt text).",
    )
    brand_logo_url: str | None = Field(
        default=None,
        description="Logo in the pages' header: an https URL (plain http only on loopback). "
        "Unset: the brand name is shown instead.",
    )
    brand_primary_color: str = Field(
        default="#2457a6",
        description="#RRGGBB of buttons, links and focus rings on the hosted pages.",
    )
    brand_background_color: str = Field(
        default="#f3f5f8", description="#RRGGBB behind the hosted pages' card."
    )

    # --- cache / shared counters ---
    redis_url: str | None = None

    # --- HTTP hardening ---
    # Browser origins allowed to call the API with credentials (CORS). Empty: no CORS at all.
    cors_origins: list[str] = Field(default_factory=list)
    # Reverse proxies (IPs or CIDR networks) whose X-Forwarded-For is believed. Empty: the
    # socket peer is the client.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Larger request bodies are refused with 413 before they are read.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # --- protocol surface ---
    # A request line plus headers longer than this is refused with 431 while it arrives (the
    # HTTP server's own parser would buffer a header of any size).
    max_header_bytes: int = Field(default=16 * 1024, ge=4096, le=1024 * 1024)
    # Serve /docs, /redoc and /openapi.json. Default: in development only.
    docs_enabled: bool | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate

    @property
    def should_serve_docs(self) -> bool:
        if self.docs_enabled is None:
            return self.environment is Environment.development
        return self.docs_enabled

    @property
    def has_configured_signing_key(self) -> bool:
        return self.jwt_private_key is not None or self.jwt_private_key_file is not None

    @property
    def may_generate_keys(self) -> bool:
        if self.jwt_keys_autogenerate is None:
            return self.environment is Environment.development
        return self.jwt_keys_autogenerate

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, origins: list[str]) -> list[str]:
        # Browsers send `Origin: scheme://host[:port]`; anything else would never match.
        checked = []
        for origin in origins:
            origin = origin.strip().rstrip("/")
            if origin != "*":
                parts = urlsplit(origin)
                if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                    raise ValueError(f"AUTH_CORS_ORIGINS: {origin!r} is not scheme://host[:port]")
            checked.append(origin)
        return checked

    @field_validator("brand_name")
    @classmethod
    def _check_brand_name(cls, name: str) -> str:
        name = name.strip()
        if not name:
            raise ValueError("AUTH_BRAND_NAME must not be blank")
        return name

    @field_validator("brand_logo_url")
    @classmethod
    def _check_brand_logo_url(cls, url: str | None) -> str | None:
        # The URL lands in an <img src> (escaped) and its origin may land in the pages' CSP:
        # one plain absolute URL, nothing that could carry credentials or break either.
        if url is None:
            return None
        parts = urlsplit(url)
        if (
            not _is_https_or_loopback(url)
            or not parts.hostname
            or "@" in parts.netloc
            or any(character.isspace() or character in "\"'<>;,\\" for character in url)
        ):
            raise ValueError(
                f"AUTH_BRAND_LOGO_URL: {url!r} is not an https URL (plain http only on loopback)"
            )
        return url

    @field_validator("brand_primary_color", "brand_background_color")
    @classmethod
    def _check_brand_color(cls, color: str, info: ValidationInfo) -> str:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
            name = f"AUTH_{(info.field_name or '').upper()}"
            raise ValueError(f"{name}: {color!r} is not a #RRGGBB colour")
        return color.lower()

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, entries: list[str]) -> list[str]:
        try:
            return [str(ipaddress.ip_network(entry.strip(), strict=False)) for entry in entries]
        except ValueError as error:
            raise ValueError(f"AUTH_TRUSTED_PROXIES: {error}") from None

    @property
    def token_state_listen_url(self) -> str | None:
        """The database URL the token-state cache listens on, or None when the cache is off
        (AUTH_AUTH_CACHE_TTL_SECONDS=0, SQLite, or a pooler in the way with no direct URL)."""
        if self.auth_cache_ttl_seconds <= 0 or self.is_sqlite:
            return None
        if self.auth_cache_listen_url:
            return self.auth_cache_listen_url
        return None if self.db_statement_cache_size == 0 else self.database_url

    @model_validator(mode="after")
    def _check_public_clients(self) -> Self:
        for client_id in self.public_clients:
            if (
                not 1 <= len(client_id) <= CLIENT_ID_MAX_LENGTH
                or client_id != client_id.strip()
                or ":" in client_id
            ):
                # No ':' (HTTP Basic cannot carry one in a user-id, RFC 7617): ids with one
                # are the service's own (the hosted sign-in page's challenges).
                raise ValueError(
                    f"AUTH_PUBLIC_CLIENTS: {client_id!r} is not a client_id of 1 to "
                    f"{CLIENT_ID_MAX_LENGTH} characters without surrounding spaces or ':'"
                )
        if self.first_party_client_id not in self.public_clients:
            raise ValueError(
                f"AUTH_FIRST_PARTY_CLIENT_ID {self.first_party_client_id!r} must be one of "
                "AUTH_PUBLIC_CLIENTS: requests naming no client are that public client"
            )
        return self

    @model_validator(mode="after")
    def _check_key_publication(self) -> Self:
        # A verifier may hold a JWKS for max-age, fetched from a replica that had not yet seen
        # the staged key (it checks every interval): the key must be published that long
        # before it signs, or that verifier refuses valid tokens.
        needed = self.jwks_max_age_seconds + math.ceil(self.key_check_interval_seconds)
        if self.key_publish_ahead_seconds < needed:
            raise ValueError(
                f"AUTH_KEY_PUBLISH_AHEAD_SECONDS={self.key_publish_ahead_seconds} is below "
                f"AUTH_JWKS_MAX_AGE_SECONDS + AUTH_KEY_CHECK_INTERVAL_SECONDS ({needed}): "
                "verifiers holding a cached JWKS would refuse tokens of a rotated key"
            )
        return self

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.environment is not Environment.production:
            return self
        problems: list[str] = []
        if self.is_sqlite and not self.allow_sqlite_in_production:
            problems.append(
                "AUTH_DATABASE_URL points at SQLite; use PostgreSQL or set "
                "AUTH_ALLOW_SQLITE_IN_PRODUCTION=true"
            )
        if self.jwt_keys_autogenerate:
            problems.append(
                "AUTH_JWT_KEYS_AUTOGENERATE is for development only; "
                "set AUTH_JWT_PRIVATE_KEY(_FILE) "
                "or create the key ring once with `authsvc keys generate`"
            )
        if self.key_store == "database" and self.key_encryption_key is None:
            problems.append(
                "AUTH_KEY_STORE=database needs AUTH_KEY_ENCRYPTION_KEY (a Fernet key) to "
                "encrypt the private signing keys in the database"
            )
        if self.email_backend == "console":
            problems.append("AUTH_EMAIL_BACKEND=console only logs mail (development); use smtp")
        if self.data_encryption_key is None:
            problems.append(
                "AUTH_DATA_ENCRYPTION_KEY is not set (queued mail and other data secrets are "
                "encrypted under it); make one with `python -c 'from cryptography.fernet import "
                "Fernet; print(Fernet.generate_key().decode())'`"
            )
        for name, url in (("AUTH_PUBLIC_URL", self.public_url), ("AUTH_ISSUER", self.issuer)):
            if not _is_https_or_loopback(url):
                problems.append(f"{name} must be https:// (plain http only for localhost)")
        if "*" in self.cors_origins:
            problems.append("AUTH_CORS_ORIGINS must list origins, not '*'")
        if any(ipaddress.ip_network(entry).prefixlen == 0 for entry in self.trusted_proxies):
            problems.append(
                "AUTH_TRUSTED_PROXIES trusts every address (0.0.0.0/0 or ::/0), "
                "so any client could forge its IP; list your proxies"
            )
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _complete_oauth_providers(self) -> Self:
        for name, provider in self.oauth_providers.items():
            if provider.kind is None:
                if name not in ("github", "google"):
                    raise ValueError(
                        f'AUTH_OAUTH_PROVIDERS[{name!r}]: set "kind" (github, google or oidc)'
                    )
                provider.kind = "github" if name == "github" else "google"
            if provider.kind == "oidc" and not provider.discovery_url:
                raise ValueError(f'AUTH_OAUTH_PROVIDERS[{name!r}]: oidc needs "discovery_url"')
        return self


def _is_https_or_loopback(url: str) -> bool:
    """Whether `url` is https, or http on this machine (the docker-compose stack on a laptop),
    where nothing crosses a network that could read or alter it."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests build their own `Settings` instead."""
    return Settings()
