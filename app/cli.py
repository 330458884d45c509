"""The `authsvc` command line: serve, migrate, and operational helpers."""

from __future__ import annotations

import asyncio
import getpass
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from app.config import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.mail import OutgoingEmail
    from app.models import User
    from app.services.common.context import ServiceContext

# Heavy imports (uvicorn, SQLAlchemy, Alembic, cryptography) live inside the commands that use
# them, so `authsvc --help` and light commands start quickly.

cli = typer.Typer(
    name="authsvc",
    help="Authentication service: users, tokens and keys.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _settings() -> Settings:
    try:
        return get_settings()
    except (ValidationError, ValueError) as exc:
        typer.echo(f"error: invalid configuration: {exc}", err=True)
        raise typer.Exit(code=2) from exc


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (default: AUTH_HOST)."),
    port: int | None = typer.Option(None, help="Port (default: AUTH_PORT)."),
) -> None:
    """Run the HTTP service with uvicorn."""
    import uvicorn

    from app.http_server import BoundedHeadersProtocol

    settings = _settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        http=BoundedHeadersProtocol,  # httptools, with AUTH_MAX_HEADER_BYTES enforced
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )


@cli.command()
def migrate() -> None:
    """Upgrade the database schema to the newest migration (`alembic upgrade head`)."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.schema_migrations import upgrade_to_head

    settings = _settings()
    try:
        upgrade_to_head(settings.database_url)
    except (OSError, SQLAlchemyError) as exc:
        typer.echo(f"error: cannot migrate the database: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo("database is at the newest schema revision")


async def _database_answers(settings: Settings) -> bool:
    from sqlalchemy import text

    from app.db import create_engine

    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except Exception:  # any failure to connect means "not yet"
        return False
    finally:
        await engine.dispose()


@cli.command("wait-for-db")
def wait_for_db(
    timeout: float = typer.Option(60.0, min=0, help="Give up after this many seconds."),
    interval: float = typer.Option(1.0, min=0.1, help="Seconds between attempts."),
) -> None:
    """Wait until the database answers `SELECT 1`; exit 1 after the timeout."""
    settings = _settings()
    deadline = time.monotonic() + timeout
    while True:
        if asyncio.run(_database_answers(settings)):
            typer.echo("database is reachable")
            return
        if time.monotonic() >= deadline:
            typer.echo(f"error: database not reachable after {timeout:g} s", err=True)
            raise typer.Exit(code=1)
        time.sleep(interval)


keys_cli = typer.Typer(
    name="keys",
    help="Keys in AUTH_KEYS_DIR: the signing key ring for access tokens, the audit HMAC key.",
    no_args_is_help=True,
)
cli.add_typer(keys_cli)


# Spelled out here, not imported, so the CLI starts without loading the crypto modules;
# mypy checks it against app.security.keys.signing_key.Algorithm where the two meet.
KeyAlgorithm = Literal["RS256", "ES256", "EdDSA"]
ALGORITHM_OPTION = typer.Option(None, "--algorithm", help="Default: AUTH_JWT_ALGORITHM.")
# Rotation keeps the old key published this long beyond the token lifetime (clock skew).
ROTATION_MARGIN_SECONDS = 60


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _warn_if_key_is_configured(settings: Settings) -> None:
    if settings.has_configured_signing_key:
        typer.echo(
            "note: AUTH_JWT_PRIVATE_KEY(_FILE) is set; the service signs with that key, "
            "not with this key ring",
            err=True,
        )


@keys_cli.command("generate")
def keys_generate(
    algorithm: KeyAlgorithm | None = ALGORITHM_OPTION,
    force: bool = typer.Option(
        False, "--force", help="Replace an existing ring: tokens its keys signed stop verifying."
    ),
) -> None:
    """Create the key ring with one signing key and print its kid."""
    from app.security.keys.directory import KeyDirectory
    from app.security.keys.errors import KeyConfigurationError, KeyRingExistsError

    settings = _settings()
    directory = KeyDirectory(settings.keys_dir)
    try:
        key = directory.generate(algorithm or settings.jwt_algorithm, force=force)
    except KeyRingExistsError as exc:
        typer.echo(
            f"error: {exc}; use `authsvc keys rotate` to change the signing key "
            "(or --force to start over, invalidating every token)",
            err=True,
        )
        raise typer.Exit(code=1) from exc
    except (KeyConfigurationError, OSError) as exc:
        typer.echo(f"error: cannot create the key ring in {directory.path}: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"generated {key.algorithm} signing key {key.kid} in {directory.path}")
    _warn_if_key_is_configured(settings)


@keys_cli.command("rotate")
def keys_rotate(algorithm: KeyAlgorithm | None = ALGORITHM_OPTION) -> None:
    """Sign with a new key; the old one stays published until its tokens have expired."""
    from app.security.keys.directory import KeyDirectory
    from app.security.keys.errors import KeyConfigurationError

    settings = _settings()
    directory = KeyDirectory(settings.keys_dir)
    try:
        rotation = directory.rotate(
            algorithm or settings.jwt_algorithm,
            settings.access_token_ttl_seconds + ROTATION_MARGIN_SECONDS,
        )
    except KeyConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    except OSError as exc:
        typer.echo(f"error: cannot rotate the key ring in {directory.path}: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    retired = rotation.retired
    typer.echo(
        f"retired {retired.algorithm} key {retired.kid}, "
        f"published until {_utc_text(rotation.publish_until)}"
    )
    typer.echo(f"current {rotation.current.algorithm} key {rotation.current.kid}")
    _warn_if_key_is_configured(settings)


@keys_cli.command("list")
def keys_list() -> None:
    """Print every published key: kid, algorithm, and whether it signs or is retired."""
    from app.security.keys.directory import KeyDirectory
    from app.security.keys.errors import KeyConfigurationError

    settings = _settings()
    directory = KeyDirectory(settings.keys_dir)
    try:
        ring = directory.load()
    except (KeyConfigurationError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    for key in ring.keys:
        status = "current"
        if key.publish_until is not None:
            status = f"retired until {_utc_text(key.publish_until)}"
        typer.echo(f"{key.kid}  {key.algorithm:<5}  {status}")
    _warn_if_key_is_configured(settings)


@keys_cli.command("audit-key")
def keys_audit_key() -> None:
    """Create the audit HMAC key in AUTH_KEYS_DIR unless one exists (an existing key is kept).

    The key stands in for the identifiers of failed sign-ins in the audit trail; replacing it
    would make new records unmatchable with old ones, so this never does.
    """
    from app.security.audit_hmac import audit_key_path, create_audit_key_file

    settings = _settings()
    path = audit_key_path(settings)
    try:
        created = create_audit_key_file(path)
    except OSError as exc:
        _fail(f"cannot create the audit HMAC key {path}: {exc}", 1)
    typer.echo(f"{'created' if created else 'kept'} the audit HMAC key {path}")
    if settings.audit_hmac_key is not None:
        typer.echo("note: AUTH_AUDIT_HMAC_KEY is set; the service uses it, not this file", err=True)


# --- administration: use cases run over the database, as the operator -----------------------

T = TypeVar("T")
UseCase = Callable[["AsyncSession", "ServiceContext"], Awaitable[T]]


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def _first_line(error: BaseException) -> str:
    # Driver errors span several lines (SQL, parameters, a help link); one line is enough here.
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class SchemaNotAtHead(Exception):
    def __init__(self, revision: str | None, expected: str | None) -> None:
        found = f"at revision {revision}" if revision else "empty (never migrated)"
        super().__init__(
            f"the database schema is {found}; this version needs revision {expected}; "
            "run `authsvc migrate` first"
        )


class _MailNotSent:
    """The outbox of the command line, which sends no mail: it says what was not sent."""

    def send_later(self, email: OutgoingEmail) -> None:
        typer.echo(
            f"note: not sent from the command line: {email.subject!r} to {email.to}", err=True
        )


class _NoDeferredWork:
    """The command line answers nobody before its work is done: no use case it runs defers
    any (only anonymous HTTP requests do)."""

    def run_later(self, job: object) -> None:
        raise RuntimeError("the command line runs no deferred work")


async def _run_over_session(settings: Settings, use_case: UseCase[T]) -> T:
    from app.db import create_engine, create_session_factory
    from app.schema_migrations import current_revision, head_revision
    from app.security.audit_hmac import AuditHmac
    from app.security.passwords import PasswordHasher
    from app.services.common.context import ServiceContext
    from app.services.common.rate_limits import RateLimiter

    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            revision = await connection.run_sync(current_revision)
        if revision != head_revision():
            raise SchemaNotAtHead(revision, head_revision())
        hasher = PasswordHasher.from_settings(settings)
        try:
            context = ServiceContext(
                settings=settings,
                hasher=hasher,
                limiter=RateLimiter(settings),
                outbox=_MailNotSent(),
                deferred=_NoDeferredWork(),
                audit_hmac=AuditHmac(settings),
            )
            async with create_session_factory(engine)() as session:
                return await use_case(session, context)
        finally:
            hasher.close()
    finally:
        await engine.dispose()


def _run_use_case(settings: Settings, use_case: UseCase[T]) -> T:
    """Run `use_case` over one session and a command-line `ServiceContext`.

    The database is migrated first when the service would migrate it at start-up (SQLite, by
    default); otherwise it must be at the newest revision already. Failures end the command
    with one `error:` line: exit code 2 for input the service refused, 1 for everything else.
    """
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from app.errors import DomainError, InvalidInput, Unprocessable
    from app.security.password_policy import WeakPassword

    try:
        if settings.should_auto_migrate:
            from app.schema_migrations import upgrade_to_head

            upgrade_to_head(settings.database_url)
        return asyncio.run(_run_over_session(settings, use_case))
    except WeakPassword as exc:
        _fail(f"password refused: {' '.join(exc.reasons) or exc.detail}", code=2)
    except (InvalidInput, Unprocessable) as exc:
        _fail(exc.detail, code=2)
    except DomainError as exc:
        _fail(exc.detail, code=1)
    except SchemaNotAtHead as exc:
        _fail(str(exc), code=1)
    except (OSError, SQLAlchemyError, CommandError) as exc:
        _fail(f"cannot use the database: {_first_line(exc)}", code=1)


def _valid_email(email: str) -> str:
    from pydantic import EmailStr, TypeAdapter

    try:
        return TypeAdapter(EmailStr).validate_python(email)
    except ValidationError:
        _fail(f"not a valid email address: {email!r}", code=2)


def _ensure_superuser(email: str, password: str | None) -> UseCase[tuple[User, bool] | None]:
    """The use case of `create-superuser`; None when the account is new and needs a password."""

    async def use_case(session: AsyncSession, context: ServiceContext) -> tuple[User, bool] | None:
        from app.services.admin.users import PasswordRequired, UserAdminService
        from app.services.common.authorization import OPERATOR
        from app.services.common.caller import Caller

        service = UserAdminService(session, context)
        try:
            return await service.ensure_superuser(
                OPERATOR, email=email, password=password, caller=Caller()
            )
        except PasswordRequired:
            return None  # a new account: the command asks for a password, then retries

    return use_case


@cli.command("create-superuser")
def create_superuser(
    email: str = typer.Option(..., "--email", help="Account to create or promote."),
    password: str | None = typer.Option(
        None,
        "--password",
        help="Password of a new account. Omit it to be prompted (command lines end up in "
        "shell history). Ignored for an existing account.",
    ),
) -> None:
    """Make EMAIL an active superuser: promote the account, or create it (verified)."""
    settings = _settings()
    email = _valid_email(email)
    outcome = _run_use_case(settings, _ensure_superuser(email, password))
    if outcome is None:
        # Piped input cannot be hidden anyway; Python's warning about it is noise here.
        warnings.simplefilter("ignore", getpass.GetPassWarning)
        password = typer.prompt(f"Password for {email}", hide_input=True, confirmation_prompt=True)
        outcome = _run_use_case(settings, _ensure_superuser(email, password))
        if outcome is None:  # someone deleted the account between the two attempts
            _fail("the account could not be created; try again", code=1)
    user, created = outcome
    if created:
        typer.echo(f"created superuser {user.email} (id {user.id})")
        return
    typer.echo(f"{user.email} already exists: it is an active superuser now (id {user.id})")
    typer.echo(
        "note: its password is unchanged"
        + ("; --password was ignored" if password is not None else ""),
        err=True,
    )


def _words(values: Sequence[str] | None) -> list[str]:
    return [word for value in values or () for word in value.split()]


@cli.command("create-client")
def create_client(
    name: str = typer.Option(..., "--name", help="What the client is, e.g. billing-service."),
    scopes: list[str] | None = typer.Option(
        None,
        "--scopes",
        help="Space-separated, like OAuth's scope parameter: permission codenames or "
        '"introspect" (may call /auth/introspect). E.g. --scopes "users:read introspect".',
    ),
    audiences: list[str] | None = typer.Option(
        None, "--audiences", help="Space-separated audiences (services) its tokens are for."
    ),
) -> None:
    """Register a service client and print its client_id and secret, once."""
    settings = _settings()

    async def use_case(session: AsyncSession, context: ServiceContext) -> tuple[str, str]:
        from app.services.admin.service_clients import ClientAdminService
        from app.services.common.authorization import OPERATOR
        from app.services.common.caller import Caller

        created, secret = await ClientAdminService(session, context).create(
            OPERATOR,
            name=name,
            scopes=_words(scopes),
            audiences=_words(audiences),
            caller=Caller(),
        )
        return created.client_id, secret

    client_id, secret = _run_use_case(settings, use_case)
    typer.echo(f"client_id:     {client_id}")
    typer.echo(f"client_secret: {secret}")
    typer.echo(
        "note: store the secret now; it cannot be shown again (only its digest is kept)",
        err=True,
    )


users_cli = typer.Typer(name="users", help="User accounts.", no_args_is_help=True)
cli.add_typer(users_cli)

USER_COLUMNS = ("id", "email", "username", "active", "verified", "superuser", "roles")


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _user_row(user: User) -> tuple[str, ...]:
    return (
        str(user.id),
        user.email,
        user.username or "-",
        _yes_no(user.is_active),
        _yes_no(user.is_verified),
        _yes_no(user.is_superuser),
        ",".join(sorted(role.name for role in user.roles)) or "-",
    )


def _echo_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@users_cli.command("list")
def users_list(
    query: str | None = typer.Option(
        None, "--query", "-q", help="Part of the email, username or full name."
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=200, help="Most users to show."),
    active: bool | None = typer.Option(
        None, "--active/--inactive", help="Only active, or only deactivated, accounts."
    ),
) -> None:
    """Print users as a table, oldest first."""
    settings = _settings()

    async def use_case(
        session: AsyncSession, context: ServiceContext
    ) -> tuple[list[tuple[str, ...]], bool]:
        from app.services.admin.users import UserAdminService
        from app.services.common.authorization import OPERATOR

        page = await UserAdminService(session, context).list_users(
            OPERATOR,
            query=query,
            is_active=active,
            is_verified=None,
            role=None,
            limit=limit,
            cursor=None,
        )
        return [_user_row(user) for user in page.items], page.next_cursor is not None

    rows, has_more = _run_use_case(settings, use_case)
    _echo_table(USER_COLUMNS, rows)
    if not rows:
        typer.echo("note: no users match", err=True)
    elif has_more:
        typer.echo("note: more users match; raise --limit or narrow --query", err=True)


def main() -> None:
    cli()
