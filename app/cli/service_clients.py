"""`authsvc create-client`: register a service client, as the operator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from app.cli.common import load_settings
from app.cli.use_cases import run_use_case

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.services.common.context import ServiceContext


def _words(values: Sequence[str] | None) -> list[str]:
    return [word for value in values or () for word in value.split()]


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
    settings = load_settings()

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

    client_id, secret = run_use_case(settings, use_case)
    typer.echo(f"client_id:     {client_id}")
    typer.echo(f"client_secret: {secret}")
    typer.echo(
        "note: store the secret now; it cannot be shown again (only its digest is kept)",
        err=True,
    )
