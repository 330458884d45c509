"""`authsvc keys`: the signing key ring of access tokens, in the store `AUTH_KEY_STORE` names
(the directory `AUTH_KEYS_DIR` or the database), its lifecycle (staged -> active -> retired),
the copy of a key directory into the database, the audit HMAC key, and re-encrypting the data
secrets after a change of AUTH_DATA_ENCRYPTION_KEY."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import typer

from app.cli.common import fail, load_settings
from app.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.security.keys.lifecycle import KeySchedule
    from app.security.keys.signing_key import SigningKey
    from app.services.common.context import ServiceContext
    from app.services.tokens.signing_keys import DatabaseKeyStore

T = TypeVar("T")

keys_cli = typer.Typer(
    name="keys",
    help="The signing key ring of access tokens (AUTH_KEY_STORE: AUTH_KEYS_DIR or the "
    "database), the audit HMAC key, and re-encrypting data under AUTH_DATA_ENCRYPTION_KEY.",
    no_args_is_help=True,
)


# Spelled out here, not imported, so the CLI starts without loading the crypto modules;
# mypy checks it against app.security.keys.signing_key.Algorithm where the two meet.
KeyAlgorithm = Literal["RS256", "ES256", "EdDSA"]
ALGORITHM_OPTION = typer.Option(None, "--algorithm", help="Default: AUTH_JWT_ALGORITHM.")


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _where(settings: Settings) -> str:
    return "the database" if settings.key_store == "database" else str(settings.keys_dir)


def _warn_if_key_is_configured(settings: Settings) -> None:
    if settings.has_configured_signing_key:
        typer.echo(
            "note: AUTH_JWT_PRIVATE_KEY(_FILE) is set; the service signs with that key, "
            "not with this key ring",
            err=True,
        )


def _in_database(
    settings: Settings,
    work: Callable[[DatabaseKeyStore, datetime], Awaitable[T]],
    *,
    private_keys: bool = True,
) -> T:
    """Run `work` over the key store in the database (AUTH_DATABASE_URL), with the encryptor
    of AUTH_KEY_ENCRYPTION_KEY when `private_keys`; a refusal ends the command."""
    from app.cli.use_cases import run_use_case
    from app.security.encryption import key_encryption_setting, load_encryptor
    from app.security.keys.errors import KeyConfigurationError, KeyLifecycleError
    from app.services.tokens.signing_keys import DatabaseKeyStore

    try:
        encryptor = None
        if private_keys:
            encryptor = load_encryptor(settings, key_encryption_setting(settings))

        async def use_case(session: AsyncSession, context: ServiceContext) -> T:
            return await work(DatabaseKeyStore(session, encryptor), context.clock())

        return run_use_case(settings, use_case)
    except (KeyConfigurationError, KeyLifecycleError) as exc:
        fail(str(exc), 1)


def _in_directory(settings: Settings, work: Callable[[], T]) -> T:
    """Run `work` over the key directory; a refusal ends the command."""
    from app.security.keys.errors import KeyConfigurationError, KeyLifecycleError

    try:
        return work()
    except (KeyConfigurationError, KeyLifecycleError) as exc:
        fail(str(exc), 1)
    except OSError as exc:
        fail(f"cannot change the key ring in {settings.keys_dir}: {exc}", 1)


@keys_cli.command("generate")
def keys_generate(
    algorithm: KeyAlgorithm | None = ALGORITHM_OPTION,
    force: bool = typer.Option(
        False, "--force", help="Replace an existing ring: tokens its keys signed stop verifying."
    ),
) -> None:
    """Create the key ring with one signing key and print its kid."""
    from app.security.keys.directory import KeyDirectory
    from app.security.keys.errors import KeyRingExistsError

    settings = load_settings()
    chosen = algorithm or settings.jwt_algorithm
    hint = (
        "; use `authsvc keys rotate` to change the signing key "
        "(or --force to start over, invalidating every token)"
    )

    async def in_database(store: DatabaseKeyStore, now: datetime) -> SigningKey:
        try:
            return await store.generate(chosen, now=now, force=force)
        except KeyRingExistsError as exc:
            raise KeyRingExistsError(f"{exc}{hint}") from None

    def in_directory() -> SigningKey:
        try:
            return KeyDirectory(settings.keys_dir).generate(chosen, force=force)
        except KeyRingExistsError as exc:
            raise KeyRingExistsError(f"{exc}{hint}") from None

    if settings.key_store == "database":
        key = _in_database(settings, in_database)
    else:
        key = _in_directory(settings, in_directory)
    typer.echo(f"generated {key.algorithm} signing key {key.kid} in {_where(settings)}")
    _warn_if_key_is_configured(settings)


@keys_cli.command("rotate")
def keys_rotate(
    algorithm: KeyAlgorithm | None = ALGORITHM_OPTION,
    now_: bool = typer.Option(
        False,
        "--now",
        help="Sign with the new key at once (a compromised key). Verifiers holding a cached "
        "JWKS refuse its tokens until they fetch the keys again.",
    ),
) -> None:
    """Stage a new key: published at once, signing after AUTH_KEY_PUBLISH_AHEAD_SECONDS; the
    active key signs until then and stays published until its tokens have expired."""
    from app.security.keys.directory import KeyDirectory
    from app.security.keys.lifecycle import retirement_period

    settings = load_settings()
    chosen = algorithm or settings.jwt_algorithm
    ahead = timedelta(seconds=0 if now_ else settings.key_publish_ahead_seconds)
    retire_for = retirement_period(settings.access_token_ttl_seconds)
    if settings.key_store == "database":
        rotation = _in_database(
            settings,
            lambda store, now: store.rotate(
                chosen, now=now, activate_after=ahead, retire_for=retire_for
            ),
        )
    else:
        rotation = _in_directory(
            settings,
            lambda: KeyDirectory(settings.keys_dir).rotate(
                chosen,
                retire_for.total_seconds(),
                activate_after_seconds=ahead.total_seconds(),
            ),
        )
    new, old = rotation.current, rotation.retired
    until = _utc_text(rotation.publish_until)
    if now_:
        typer.echo(f"active {new.algorithm} key {new.kid}: signs from now")
        typer.echo(
            f"retired key {old.kid}, published until {until}; if it is compromised, "
            f"`authsvc keys retire {old.kid}` stops publishing it now"
        )
    else:
        typer.echo(
            f"staged {new.algorithm} key {new.kid}: published now, signs from "
            f"{_utc_text(rotation.activates_at)} (in {int(ahead.total_seconds())} s)"
        )
        typer.echo(f"active key {old.kid} signs until then; retired, published until {until}")
    _warn_if_key_is_configured(settings)


@keys_cli.command("retire")
def keys_retire(kid: str = typer.Argument(..., help="The kid of the key to retire.")) -> None:
    """Stop publishing a key at once: tokens it signed are refused from then on (a staged key
    is withdrawn instead of signing). The active key cannot be retired: rotate with --now
    first."""
    from app.security.keys.directory import KeyDirectory
    from app.security.keys.lifecycle import KeyState

    settings = load_settings()
    if settings.key_store == "database":
        entry = _in_database(
            settings, lambda store, now: store.retire(kid, now=now), private_keys=False
        )
    else:
        entry = _in_directory(settings, lambda: KeyDirectory(settings.keys_dir).retire(kid))
    interval = settings.key_check_interval_seconds
    if entry.stored_state is KeyState.STAGED:
        typer.echo(f"withdrew staged key {kid}: it will not sign; the active key keeps signing")
    else:
        typer.echo(
            f"retired key {kid}: no longer published; tokens it signed are refused "
            f"(by every replica within {interval:g} s)"
        )
    _warn_if_key_is_configured(settings)


@keys_cli.command("list")
def keys_list() -> None:
    """Print the ring, newest first: kid, algorithm, state (staged, active, retired) and
    when it changes."""
    from app.security.keys.directory import KeyDirectory
    from app.security.keys.errors import KeyRingNotFoundError

    settings = load_settings()
    now = datetime.now(UTC)

    async def read(store: DatabaseKeyStore, now: datetime) -> KeySchedule:
        from app.services.tokens.signing_keys import NO_RING

        _revision, schedule = await store.load(now, private=False)
        if schedule is None:
            raise KeyRingNotFoundError(NO_RING)
        return schedule

    if settings.key_store == "database":
        schedule = _in_database(settings, read, private_keys=False)
    else:
        schedule = _in_directory(
            settings, lambda: KeyDirectory(settings.keys_dir).load_schedule(now, private=False)
        )
    for line in _listing(schedule, now):
        typer.echo(line)
    _warn_if_key_is_configured(settings)


def _listing(schedule: KeySchedule, now: datetime) -> list[str]:
    from app.security.keys.lifecycle import EPOCH, KeyState

    lines = []
    for entry in schedule.entries:
        state = entry.state_at(now)
        if state is None:
            continue
        if state is KeyState.STAGED:
            when = f"signs from {_utc_text(entry.activates_at)}"
        elif state is KeyState.ACTIVE:
            since = "" if entry.activates_at == EPOCH else f" since {_utc_text(entry.activates_at)}"
            when = f"signing{since}"
            if entry.retires_at is not None:
                when += f", until {_utc_text(entry.retires_at)}"
        else:
            assert entry.publish_until is not None
            when = f"published until {_utc_text(entry.publish_until)}"
        lines.append(f"{entry.kid}  {entry.key.algorithm:<5}  {state.value:<7}  {when}")
    return lines


@keys_cli.command("import")
def keys_import(
    source: Path | None = typer.Option(
        None, "--from", help="The key directory to copy. Default: AUTH_KEYS_DIR."
    ),
) -> None:
    """Copy a key directory's ring (with its states and times) into the database, private
    keys encrypted under AUTH_KEY_ENCRYPTION_KEY; then set AUTH_KEY_STORE=database.
    Running it again changes nothing; a database holding other keys is left alone."""
    from app.security.keys.directory import KeyDirectory
    from app.services.tokens.signing_keys import ImportOutcome

    settings = load_settings()
    path = source or settings.keys_dir
    now = datetime.now(UTC)
    schedule = _in_directory(settings, lambda: KeyDirectory(path).load_schedule(now))
    outcome = _in_database(settings, lambda store, now: store.import_ring(schedule, now=now))
    settled = schedule.settled(now)
    kids = ", ".join(f"{entry.kid} ({entry.stored_state})" for entry in settled.entries)
    if outcome is ImportOutcome.IMPORTED:
        typer.echo(f"imported {len(settled.entries)} keys from {path} into the database: {kids}")
    else:
        typer.echo(f"the database already holds the key ring of {path}; nothing to do")
    if settings.key_store != "database":
        typer.echo("note: set AUTH_KEY_STORE=database for the service to use it", err=True)


@keys_cli.command("audit-key")
def keys_audit_key() -> None:
    """Create the audit HMAC key in AUTH_KEYS_DIR unless one exists (an existing key is kept).

    The key stands in for the identifiers of failed sign-ins in the audit trail; replacing it
    would make new records unmatchable with old ones, so this never does.
    """
    from app.security.audit_hmac import audit_key_path, create_audit_key_file

    settings = load_settings()
    path = audit_key_path(settings)
    try:
        created = create_audit_key_file(path)
    except OSError as exc:
        fail(f"cannot create the audit HMAC key {path}: {exc}", 1)
    typer.echo(f"{'created' if created else 'kept'} the audit HMAC key {path}")
    if settings.audit_hmac_key is not None:
        typer.echo("note: AUTH_AUDIT_HMAC_KEY is set; the service uses it, not this file", err=True)


@keys_cli.command("reencrypt-data")
def keys_reencrypt_data(
    batch_size: int = typer.Option(
        500, "--batch-size", min=1, max=10_000, help="Rows rewritten per transaction."
    ),
) -> None:
    """Re-encrypt every TOTP secret and queued mail under the first key of
    AUTH_DATA_ENCRYPTION_KEY. Rotate that key by listing the new one first (`new,old`) on
    every replica, running this, then dropping the old one. Safe while the service runs;
    running it again changes nothing."""
    from app.cli.use_cases import run_use_case
    from app.security.keys.errors import KeyConfigurationError
    from app.services.operations.data_encryption import DataReencryption, Reencryption

    settings = load_settings()

    async def use_case(session: AsyncSession, context: ServiceContext) -> list[Reencryption]:
        return await DataReencryption(session, context).reencrypt_all(batch_size)

    try:
        outcomes = run_use_case(settings, use_case)
    except KeyConfigurationError as exc:
        fail(str(exc), 1)
    for outcome in outcomes:
        typer.echo(
            f"{outcome.what}: {outcome.reencrypted} re-encrypted, {outcome.current} already "
            f"under the first key, {outcome.undecryptable} under none of the keys"
        )
    unreadable = [outcome for outcome in outcomes if outcome.undecryptable]
    if unreadable:
        counts = ", ".join(f"{outcome.undecryptable} {outcome.what}" for outcome in unreadable)
        fail(
            f"{counts} could not be decrypted with any key of AUTH_DATA_ENCRYPTION_KEY and were "
            "left as they are; keep the key that encrypted them in the list",
            1,
        )
    typer.echo("every row is under the first key of AUTH_DATA_ENCRYPTION_KEY; the others can go")
