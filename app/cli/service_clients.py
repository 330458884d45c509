"""`authsvc create-client`: register a client, as the operator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from app.cli.common import fail, load_settings
from app.cli.use_cases import run_use_case
from app.errors import InvalidField

# Light (no database, no SQLAlchemy): the rules and their names, for --help and the defaults.
from app.services.admin.client_registration import (
    DEFAULT_AUTH_METHOD,
    DEFAULT_GRANT_TYPES,
    GrantType,
    TokenEndpointAuthMethod,
    checked_registration,
)

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
    grant_types: list[str] | None = typer.Option(
        None,
        "--grant-type",
        help=f"A grant the client may use, repeatable: {', '.join(GrantType)}. "
        f"Default: {' '.join(DEFAULT_GRANT_TYPES)}.",
    ),
    redirect_uris: list[str] | None = typer.Option(
        None,
        "--redirect-uri",
        help="Where authorization responses may go, repeatable; matched exactly. https, "
        "http on 127.0.0.1/[::1]/localhost, or a private-use scheme (com.example.app:/cb).",
    ),
    post_logout_redirect_uris: list[str] | None = typer.Option(
        None,
        "--post-logout-redirect-uri",
        help="Where sign-out may return to, repeatable; rules as --redirect-uri.",
    ),
    auth_method: str | None = typer.Option(
        None,
        "--auth-method",
        help=f"Token endpoint authentication: {', '.join(TokenEndpointAuthMethod)}. "
        f"Default: {DEFAULT_AUTH_METHOD}.",
    ),
    public: bool = typer.Option(
        False,
        "--public",
        help="A public client (single-page or native app): --auth-method none, no secret.",
    ),
    first_party: bool = typer.Option(
        False, "--first-party", help="The operator's own application (may use the password grant)."
    ),
) -> None:
    """Register a client and print its client_id and secret (once; a public client has none)."""
    none = TokenEndpointAuthMethod.none
    if public and auth_method not in (None, none):
        fail(f"--public means --auth-method {none}, not {auth_method}", code=2)
    method = none if public else auth_method or DEFAULT_AUTH_METHOD
    try:
        # The service checks these again; checked here too, a mistake costs no database trip.
        checked_registration(
            grant_types=grant_types or DEFAULT_GRANT_TYPES,
            redirect_uris=redirect_uris or (),
            post_logout_redirect_uris=post_logout_redirect_uris or (),
            token_endpoint_auth_method=method,
            is_first_party=first_party,
        )
    except InvalidField as refusal:
        fail(refusal.detail, code=2)
    settings = load_settings()

    async def use_case(session: AsyncSession, context: ServiceContext) -> tuple[str, str | None]:
        from app.services.admin.service_clients import ClientAdminService
        from app.services.common.authorization import OPERATOR
        from app.services.common.caller import Caller

        created, secret = await ClientAdminService(session, context).create(
            OPERATOR,
            name=name,
            scopes=_words(scopes),
            audiences=_words(audiences),
            grant_types=grant_types or DEFAULT_GRANT_TYPES,
            redirect_uris=redirect_uris or (),
            post_logout_redirect_uris=post_logout_redirect_uris or (),
            token_endpoint_auth_method=method,
            is_first_party=first_party,
            caller=Caller(),
        )
        return created.client_id, secret

    client_id, secret = run_use_case(settings, use_case)
    typer.echo(f"client_id:     {client_id}")
    if secret is None:
        typer.echo(
            "note: a public client has no secret; it names itself with its client_id", err=True
        )
        return
    typer.echo(f"client_secret: {secret}")
    typer.echo(
        "note: store the secret now; it cannot be shown again (only its digest is kept)",
        err=True,
    )
