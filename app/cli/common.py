"""What every command shares: the settings, and the one `error:` line a failure ends with."""

from __future__ import annotations

from typing import NoReturn

import typer
from pydantic import ValidationError

from app.config import Settings, get_settings


def load_settings() -> Settings:
    """The settings from the environment; invalid ones end the command with exit code 2."""
    try:
        return get_settings()
    except (ValidationError, ValueError) as exc:
        typer.echo(f"error: invalid configuration: {exc}", err=True)
        raise typer.Exit(code=2) from exc


def fail(message: str, code: int) -> NoReturn:
    """End the command with `error: message` on stderr and exit code `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)
