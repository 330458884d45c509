"""`authsvc create-superuser` and `authsvc users list`: user accounts, as the operator."""

from __future__ import annotations

import getpass
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError

from app.cli.common import fail, load_settings
from app.cli.use_cases import UseCase, run_use_case

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.models import User
    from app.services.common.context import ServiceContext


def _valid_email(email: str) -> str:
    from pydantic import EmailStr, TypeAdapter

    try:
        return TypeAdapter(EmailStr).validate_python(email)
    except ValidationError:
        fail(f"not a valid email address: {email!r}", code=2)


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
    settings = load_settings()
    email = _valid_email(email)
    outcome = run_use_case(settings, _ensure_superuser(email, password))
    if outcome is None:
        # Piped input cannot be hidden anyway; Python's warning about it is noise here.
        warnings.simplefilter("ignore", getpass.GetPassWarning)
        password = typer.prompt(f"Password for {email}", hide_input=True, confirmation_prompt=True)
        outcome = run_use_case(settings, _ensure_superuser(email, password))
        if outcome is None:  # someone deleted the account between the two attempts
            fail("the account could not be created; try again", code=1)
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


users_cli = typer.Typer(name="users", help="User accounts.", no_args_is_help=True)

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
    settings = load_settings()

    async def use_case(
        session: AsyncSession, context: ServiceContext
    ) -> tuple[list[tuple[str, ...]], bool]:
        from app.services.admin.users import UserAdminService, UserSearch
        from app.services.common.authorization import OPERATOR

        page = await UserAdminService(session, context).list_users(
            OPERATOR, UserSearch(query=query, is_active=active), limit=limit
        )
        return [_user_row(user) for user in page.items], page.next_cursor is not None

    rows, has_more = run_use_case(settings, use_case)
    _echo_table(USER_COLUMNS, rows)
    if not rows:
        typer.echo("note: no users match", err=True)
    elif has_more:
        typer.echo("note: more users match; raise --limit or narrow --query", err=True)
