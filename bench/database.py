"""Benchmark databases on PostgreSQL: create, migrate, seed users in SQL, look them up."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter

import asyncpg  # type: ignore[import-untyped]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EMAIL_DOMAIN = "bench.example"

_SEED_USERS = """
INSERT INTO users (id, email, hashed_password, is_active, is_verified, is_superuser,
                   token_version, created_at, updated_at)
SELECT gen_random_uuid(), 'user' || n || '@' || $4::text, $3, true, true, false, 0, now(), now()
FROM generate_series($1::int, $2::int) AS n
"""

# Two-step sign-in for seeded users: a confirmed authenticator (one encrypted secret shared by
# all, like the password hash) and `mfa_enabled`.
_SEED_TOTP_FACTORS = """
WITH chosen AS (
    UPDATE users SET mfa_enabled = true
    WHERE email IN (
        SELECT 'user' || n || '@' || $4::text FROM generate_series($1::int, $2::int) AS n
    )
    RETURNING id
)
INSERT INTO totp_factors (id, user_id, encrypted_secret, confirmed_at, created_at)
SELECT gen_random_uuid(), id, $3, now(), now() FROM chosen
"""

# A sign-in waiting for its second step, as a right password leaves it, for each seeded user:
# its `mfa_token` is `mfa_token_of(n)`, stored as the service stores it (SHA-256 hex).
_SEED_MFA_CHALLENGES = """
INSERT INTO mfa_challenges (id, token_hash, user_id, client_id, scope, first_factor,
                            token_version, failed_attempts, expires_at, created_at)
SELECT gen_random_uuid(), encode(sha256(convert_to($5::text || n, 'UTF8')), 'hex'), u.id, $3,
       '', 'pwd', u.token_version, 0, now() + make_interval(secs => $4::int), now()
FROM generate_series($1::int, $2::int) AS n
JOIN users AS u ON u.email = 'user' || n || '@' || $6::text
"""
MFA_TOKEN_PREFIX = "bench-mfa-token-"


def mfa_token_of(number: int) -> str:
    """The `mfa_token` of seeded user `number`'s seeded challenge."""
    return f"{MFA_TOKEN_PREFIX}{number}"


def email_of(number: int) -> str:
    """The sign-in name of seeded user `number`."""
    return f"user{number}@{EMAIL_DOMAIN}"


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """One PostgreSQL database owned by the benchmark (dropped and recreated per run)."""

    server_url: str  # postgresql://user@host:port, no database
    name: str

    @property
    def dsn(self) -> str:
        return f"{self.server_url}/{self.name}"

    @property
    def sqlalchemy_url(self) -> str:
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def recreate(self) -> None:
        await self.drop()
        admin = await asyncpg.connect(f"{self.server_url}/postgres")
        try:
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()

    async def drop(self) -> None:
        admin = await asyncpg.connect(f"{self.server_url}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await admin.close()

    async def migrate(self) -> None:
        """`authsvc migrate`: the service's own migrations, in a child process."""
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "authsvc"),
            "migrate",
            cwd=PROJECT_ROOT,
            env={**os.environ, "AUTH_DATABASE_URL": self.sqlalchemy_url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"authsvc migrate failed:\n{output.decode(errors='replace')}")

    async def seed_users(self, first: int, last: int, password_hash: str) -> float:
        """Insert users `first..last` (one statement) sharing `password_hash`; seconds taken."""
        started = perf_counter()
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute("SET synchronous_commit = off")
            await connection.execute(_SEED_USERS, first, last, password_hash, EMAIL_DOMAIN)
        finally:
            await connection.close()
        return perf_counter() - started

    async def seed_totp_factors(self, first: int, last: int, encrypted_secret: str) -> None:
        """Turn two-step sign-in on for users `first..last`, all with one authenticator secret
        (`encrypted_secret`: its Fernet ciphertext under the service's data key)."""
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute("SET synchronous_commit = off")
            await connection.execute(
                _SEED_TOTP_FACTORS, first, last, encrypted_secret, EMAIL_DOMAIN
            )
        finally:
            await connection.close()

    async def seed_mfa_challenges(
        self, first: int, last: int, client_id: str, ttl_seconds: int
    ) -> None:
        """An open challenge (`mfa_token_of(n)`, for `client_id`, valid `ttl_seconds`) for each
        of users `first..last`, as their right password would have left it."""
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute("SET synchronous_commit = off")
            await connection.execute(
                _SEED_MFA_CHALLENGES,
                first,
                last,
                client_id,
                ttl_seconds,
                MFA_TOKEN_PREFIX,
                EMAIL_DOMAIN,
            )
        finally:
            await connection.close()

    async def settle(self) -> None:
        """VACUUM ANALYZE and CHECKPOINT after seeding, so that neither autovacuum nor the
        checkpointer kick in while a load runs."""
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute("VACUUM ANALYZE")
            await connection.execute("CHECKPOINT")
        finally:
            await connection.close()

    async def add_service_client(
        self, client_id: str, secret_digest: str, scopes: list[str]
    ) -> None:
        """Register a service client directly, as `authsvc create-client` would."""
        connection = await asyncpg.connect(self.dsn)
        try:
            await connection.execute(
                "INSERT INTO service_clients (id, client_id, name, secret_hash, scopes, audiences,"
                " is_active, created_at, updated_at)"
                " VALUES (gen_random_uuid(), $1, $1, $2, $3::json, '[]', true, now(), now())"
                " ON CONFLICT (client_id) DO NOTHING",
                client_id,
                secret_digest,
                json.dumps(scopes),
            )
        finally:
            await connection.close()

    async def user_ids(self, numbers: Iterable[int]) -> dict[int, uuid.UUID]:
        """Primary keys of seeded users, by their number."""
        wanted = {email_of(number): number for number in numbers}
        connection = await asyncpg.connect(self.dsn)
        try:
            rows = await connection.fetch(
                "SELECT id, email FROM users WHERE email = ANY($1::text[])", list(wanted)
            )
        finally:
            await connection.close()
        return {wanted[row["email"]]: row["id"] for row in rows}

    async def count_users(self) -> int:
        connection = await asyncpg.connect(self.dsn)
        try:
            count: int = await connection.fetchval("SELECT count(*) FROM users")
        finally:
            await connection.close()
        return count
