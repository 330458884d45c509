"""`authsvc create-superuser`, `create-client` and `users list`, run as a user runs them: a
subprocess over the worker's database (PostgreSQL and SQLite)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import User
from app.repositories import AuditEventRepository, ServiceClientRepository, UserRepository
from app.security.client_secrets import verify_client_secret
from tests.support.admins import admin_headers
from tests.support.cli import AUTHSVC
from tests.support.flows import PASSWORD, bearer, password_grant, register, sign_in

Sessions = async_sessionmaker[AsyncSession]
FAST_HASHING = {"AUTH_ARGON2_MEMORY_COST_KIB": "1024", "AUTH_ARGON2_TIME_COST": "1"}
UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/none"


def _run(
    args: tuple[str, ...], env: dict[str, str], stdin: str | None
) -> subprocess.CompletedProcess[str]:
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    return subprocess.run(
        [AUTHSVC, *args],
        env={**clean_env, "AUTH_ENVIRONMENT": "development", **FAST_HASHING, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # No controlling terminal: a hidden prompt then reads the piped stdin, as in a script.
        start_new_session=True,
    )


async def authsvc(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command line on a thread, so the event loop the fixtures share is not blocked."""
    return await asyncio.to_thread(_run, args, env, stdin)


@pytest.fixture
def cli_env(database_url: str, session_factory: Sessions) -> dict[str, str]:
    """The environment pointing the command line at the worker's database; `session_factory`
    empties the tables after the test."""
    return {"AUTH_DATABASE_URL": database_url}


async def load_user(sessions: Sessions, email: str) -> User | None:
    async with sessions() as session:
        return await UserRepository(session).get_by_email(email)


def assert_clean_error(result: subprocess.CompletedProcess[str], code: int) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") or "\nerror: " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# --- create-superuser ----------------------------------------------------------------------


async def test_create_superuser_creates_a_verified_superuser_who_can_sign_in(
    cli_env: dict[str, str], session_factory: Sessions, client: httpx.AsyncClient
) -> None:
    result = await authsvc(
        "create-superuser", "--email", "Root@Example.com", "--password", PASSWORD, env=cli_env
    )

    assert result.returncode == 0, result.stderr
    assert "created superuser root@example.com" in result.stdout
    user = await load_user(session_factory, "root@example.com")
    assert user is not None
    assert (user.is_superuser, user.is_active, user.is_verified) == (True, True, True)
    tokens = await sign_in(client, "root@example.com", PASSWORD)
    admin_route = await client.get("/admin/clients", headers=bearer(tokens["access_token"]))
    assert admin_route.status_code == 200, admin_route.text


async def test_create_superuser_promotes_an_existing_account_and_keeps_its_password(
    cli_env: dict[str, str], session_factory: Sessions, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com")

    first = await authsvc(
        "create-superuser", "--email", "ada@example.com", "--password", "ignored " * 3, env=cli_env
    )
    again = await authsvc("create-superuser", "--email", "ada@example.com", env=cli_env)

    for result in (first, again):
        assert result.returncode == 0, result.stderr
        assert "already exists" in result.stdout
        assert "password is unchanged" in result.stderr
    assert "--password was ignored" in first.stderr
    user = await load_user(session_factory, "ada@example.com")
    assert user is not None
    assert user.is_superuser
    async with session_factory() as session:
        assert await UserRepository(session).count() == 1
    assert (await password_grant(client, "ada@example.com", PASSWORD)).status_code == 200


async def test_create_superuser_prompts_for_the_password_of_a_new_account(
    cli_env: dict[str, str], client: httpx.AsyncClient
) -> None:
    chosen = "a passphrase typed at the prompt"

    result = await authsvc(
        "create-superuser", "--email", "root@example.com", env=cli_env, stdin=f"{chosen}\n" * 2
    )

    assert result.returncode == 0, result.stderr
    assert chosen not in result.stdout
    assert (await password_grant(client, "root@example.com", chosen)).status_code == 200


async def test_a_weak_password_is_exit_2_and_creates_nobody(
    cli_env: dict[str, str], session_factory: Sessions
) -> None:
    result = await authsvc(
        "create-superuser", "--email", "root@example.com", "--password", "short", env=cli_env
    )

    assert_clean_error(result, 2)
    assert "password" in result.stderr
    assert await load_user(session_factory, "root@example.com") is None


async def test_an_invalid_email_is_exit_2(
    cli_env: dict[str, str], session_factory: Sessions
) -> None:
    result = await authsvc(
        "create-superuser", "--email", "not-an-email", "--password", PASSWORD, env=cli_env
    )

    assert_clean_error(result, 2)
    assert "email" in result.stderr
    async with session_factory() as session:
        assert await UserRepository(session).count() == 0


async def test_create_superuser_is_audited_as_the_command_line(
    cli_env: dict[str, str], session_factory: Sessions
) -> None:
    await authsvc(
        "create-superuser", "--email", "root@example.com", "--password", PASSWORD, env=cli_env
    )

    async with session_factory() as session:
        [event] = await AuditEventRepository(session).list_by(type="user.created")
    assert event.actor_id is None
    assert event.details["via"] == "cli"


# --- create-client -------------------------------------------------------------------------


def printed(result: subprocess.CompletedProcess[str], label: str) -> str:
    [line] = [line for line in result.stdout.splitlines() if line.startswith(f"{label}:")]
    return line.split(":", 1)[1].strip()


async def test_create_client_prints_a_secret_whose_digest_is_stored(
    cli_env: dict[str, str], session_factory: Sessions
) -> None:
    result = await authsvc(
        "create-client",
        "--name",
        "billing",
        "--scopes",
        "users:read introspect",
        "--audiences",
        "billing-api",
        env=cli_env,
    )

    assert result.returncode == 0, result.stderr
    assert "cannot be shown again" in result.stderr
    client_id, secret = printed(result, "client_id"), printed(result, "client_secret")
    async with session_factory() as session:
        row = await ServiceClientRepository(session).get_by_client_id(client_id)
        [event] = await AuditEventRepository(session).list_by(type="client.created")
    assert row is not None
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert verify_client_secret(row, secret)
    assert (row.name, row.scopes, row.audiences) == (
        "billing",
        ["users:read", "introspect"],
        ["billing-api"],
    )
    assert event.details["client_id"] == client_id
    assert secret not in str(event.details)


async def test_create_client_with_an_unknown_scope_fails_and_stores_nothing(
    cli_env: dict[str, str], session_factory: Sessions
) -> None:
    result = await authsvc(
        "create-client", "--name", "billing", "--scopes", "users:read no:such", env=cli_env
    )

    assert_clean_error(result, 2)
    assert "no:such" in result.stderr
    async with session_factory() as session:
        assert await ServiceClientRepository(session).count() == 0


async def test_create_client_registers_grant_types_uris_and_first_party(
    cli_env: dict[str, str], session_factory: Sessions
) -> None:
    result = await authsvc(
        "create-client",
        "--name",
        "web",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "password",
        "--grant-type",
        "refresh_token",
        "--redirect-uri",
        "https://www.example.com/callback",
        "--redirect-uri",
        "http://127.0.0.1:8080/callback",
        "--post-logout-redirect-uri",
        "https://www.example.com/",
        "--auth-method",
        "client_secret_post",
        "--first-party",
        env=cli_env,
    )

    assert result.returncode == 0, result.stderr
    client_id, secret = printed(result, "client_id"), printed(result, "client_secret")
    async with session_factory() as session:
        row = await ServiceClientRepository(session).get_by_client_id(client_id)
    assert row is not None
    assert verify_client_secret(row, secret)
    assert row.grant_types == ["authorization_code", "password", "refresh_token"]
    assert row.redirect_uris == [
        "https://www.example.com/callback",
        "http://127.0.0.1:8080/callback",
    ]
    assert row.post_logout_redirect_uris == ["https://www.example.com/"]
    assert (row.token_endpoint_auth_method, row.is_first_party) == ("client_secret_post", True)


async def test_create_client_public_prints_no_secret(
    cli_env: dict[str, str], session_factory: Sessions
) -> None:
    result = await authsvc(
        "create-client",
        "--name",
        "mobile",
        "--public",
        "--grant-type",
        "authorization_code",
        "--redirect-uri",
        "com.example.app:/callback",
        env=cli_env,
    )

    assert result.returncode == 0, result.stderr
    assert "client_secret" not in result.stdout
    async with session_factory() as session:
        row = await ServiceClientRepository(session).get_by_client_id(printed(result, "client_id"))
    assert row is not None
    assert (row.token_endpoint_auth_method, row.secret_hash) == ("none", None)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (
            ("--grant-type", "authorization_code", "--redirect-uri", "http://a.example/cb"),
            "redirect_uris",
        ),
        (("--public",), "client_credentials"),  # the default grant needs a secret
        (("--grant-type", "password"), "is_first_party"),
        (("--public", "--auth-method", "client_secret_post"), "--public"),
    ],
)
async def test_create_client_refuses_what_the_api_refuses_and_stores_nothing(
    cli_env: dict[str, str], session_factory: Sessions, args: tuple[str, ...], named: str
) -> None:
    result = await authsvc("create-client", "--name", "x", *args, env=cli_env)

    assert_clean_error(result, 2)
    assert named in result.stderr
    async with session_factory() as session:
        assert await ServiceClientRepository(session).count() == 0


# --- users list ----------------------------------------------------------------------------


async def test_users_list_shows_the_users(
    cli_env: dict[str, str], session_factory: Sessions, client: httpx.AsyncClient
) -> None:
    await register(client, "ada@example.com", username="ada")
    await admin_headers(client, session_factory, "root@example.com", roles=["admin"])

    everyone = await authsvc("users", "list", env=cli_env)
    matching = await authsvc("users", "list", "--query", "ADA", env=cli_env)
    inactive = await authsvc("users", "list", "--inactive", env=cli_env)

    assert everyone.returncode == 0, everyone.stderr
    header, *rows = everyone.stdout.splitlines()
    assert header.split() == ["id", "email", "username", "active", "verified", "superuser", "roles"]
    assert [row.split()[1:] for row in rows] == [
        ["ada@example.com", "ada", "yes", "no", "no", "-"],
        ["root@example.com", "-", "yes", "no", "no", "admin"],
    ]
    assert [row.split()[1] for row in matching.stdout.splitlines()[1:]] == ["ada@example.com"]
    assert inactive.stdout.splitlines()[1:] == []
    assert "no users match" in inactive.stderr


async def test_users_list_says_when_more_users_match_than_shown(
    cli_env: dict[str, str], client: httpx.AsyncClient
) -> None:
    for name in ("ada", "bob"):
        await register(client, f"{name}@example.com")

    result = await authsvc("users", "list", "--limit", "1", env=cli_env)

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert "more users match" in result.stderr


# --- the database --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("create-superuser", "--email", "root@example.com", "--password", PASSWORD),
        ("create-client", "--name", "billing"),
        ("users", "list"),
    ],
)
async def test_an_unreachable_database_is_exit_1_without_a_traceback(args: tuple[str, ...]) -> None:
    result = await authsvc(*args, env={"AUTH_DATABASE_URL": UNREACHABLE})

    assert_clean_error(result, 1)
    assert "database" in result.stderr


async def test_a_fresh_sqlite_file_is_migrated_first(tmp_path: Path) -> None:
    database = tmp_path / "new" / "authsvc.db"
    env = {"AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}

    result = await authsvc(
        "create-superuser", "--email", "root@example.com", "--password", PASSWORD, env=env
    )

    assert result.returncode == 0, result.stderr
    with sqlite3.connect(database) as connection:
        emails = [row[0] for row in connection.execute("SELECT email FROM users")]
    assert emails == ["root@example.com"]


async def test_a_database_behind_the_code_is_reported_not_migrated(tmp_path: Path) -> None:
    env = {
        "AUTH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        "AUTH_AUTO_MIGRATE": "false",
    }

    result = await authsvc("users", "list", env=env)

    assert_clean_error(result, 1)
    assert "authsvc migrate" in result.stderr


async def test_help_lists_the_admin_commands() -> None:
    result = await authsvc("--help", env={})

    assert result.returncode == 0
    for command in ("create-superuser", "create-client", "users"):
        assert command in result.stdout
