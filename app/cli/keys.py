"""`authsvc keys`: the signing key ring for access tokens and the audit HMAC key, on disk in
AUTH_KEYS_DIR."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import typer

from app.cli.common import fail, load_settings
from app.config import Settings

keys_cli = typer.Typer(
    name="keys",
    help="Keys in AUTH_KEYS_DIR: the signing key ring for access tokens, the audit HMAC key.",
    no_args_is_help=True,
)


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

    settings = load_settings()
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

    settings = load_settings()
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

    settings = load_settings()
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

    settings = load_settings()
    path = audit_key_path(settings)
    try:
        created = create_audit_key_file(path)
    except OSError as exc:
        fail(f"cannot create the audit HMAC key {path}: {exc}", 1)
    typer.echo(f"{'created' if created else 'kept'} the audit HMAC key {path}")
    if settings.audit_hmac_key is not None:
        typer.echo("note: AUTH_AUDIT_HMAC_KEY is set; the service uses it, not this file", err=True)
