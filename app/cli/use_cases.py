"""Running a service's use case from the command line: over the database, as the operator.

The administrative commands (`create-superuser`, `create-client`, `users list`) hand
`run_use_case` a function of a session and a `ServiceContext`; it opens the service's
runtime, checks the schema, runs the function and turns a refusal into one `error:` line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from app.cli.common import fail
from app.config import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from app.mail import OutgoingEmail
    from app.services.common.context import ServiceContext
    from app.services.common.mail_outbox import MailOutbox

T = TypeVar("T")
UseCase = Callable[["AsyncSession", "ServiceContext"], Awaitable[T]]


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


class _NotedOutbox:
    """The command line queues mail in the outbox like the service does (a running
    `authsvc serve` or `authsvc worker` delivers it) and says so."""

    def __init__(self, outbox: MailOutbox) -> None:
        self._outbox = outbox

    async def enqueue(self, session: AsyncSession, email: OutgoingEmail) -> None:
        await self._outbox.enqueue(session, email)
        self._note(email)

    async def enqueue_alone(self, email: OutgoingEmail) -> None:
        await self._outbox.enqueue_alone(email)
        self._note(email)

    def _note(self, email: OutgoingEmail) -> None:
        typer.echo(
            f"note: queued {email.subject!r} to {email.to}; a running `authsvc serve` or "
            "`authsvc worker` delivers it",
            err=True,
        )


class _NoDeferredWork:
    """The command line answers nobody before its work is done: no use case it runs defers
    any (only anonymous HTTP requests do)."""

    def run_later(self, job: object) -> None:
        raise RuntimeError("the command line runs no deferred work")


async def _run_over_session(settings: Settings, use_case: UseCase[T]) -> T:
    from app.runtime import open_runtime
    from app.schema_migrations import current_revision, head_revision
    from app.services.common.context import ServiceContext

    # The service's own runtime, but its keys are never loaded: no command here signs a token.
    async with open_runtime(settings) as runtime:
        async with runtime.engine.connect() as connection:
            revision = await connection.run_sync(current_revision)
        if revision != head_revision():
            raise SchemaNotAtHead(revision, head_revision())
        context = ServiceContext(
            settings=settings,
            hasher=runtime.password_hasher,
            limiter=runtime.rate_limiter,
            outbox=_NotedOutbox(runtime.mail_outbox),
            deferred=_NoDeferredWork(),
            audit_hmac=runtime.audit_hmac,
            clock=runtime.clock,
            data_encryptor=runtime.load_data_encryptor,
        )
        async with runtime.session_factory() as session:
            return await use_case(session, context)


def run_use_case(settings: Settings, use_case: UseCase[T]) -> T:
    """Run `use_case` over one session and a command-line `ServiceContext`.

    The database is migrated first when the service would migrate it at start-up (SQLite, by
    default); otherwise it must be at the newest revision already. Failures end the command
    with one `error:` line: exit code 2 for input the service refused, 1 for everything else.
    """
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from app.errors import DomainError, InvalidInput, Unprocessable
    from app.mail.senders import MailConfigurationError
    from app.security.password_policy import WeakPassword

    try:
        if settings.should_auto_migrate:
            from app.schema_migrations import upgrade_to_head

            upgrade_to_head(settings.database_url)
        return asyncio.run(_run_over_session(settings, use_case))
    except WeakPassword as exc:
        fail(f"password refused: {' '.join(exc.reasons) or exc.detail}", code=2)
    except (InvalidInput, Unprocessable) as exc:
        fail(exc.detail, code=2)
    except DomainError as exc:
        fail(exc.detail, code=1)
    except (SchemaNotAtHead, MailConfigurationError) as exc:
        fail(str(exc), code=1)
    except (OSError, SQLAlchemyError, CommandError) as exc:
        fail(f"cannot use the database: {_first_line(exc)}", code=1)
