"""The `authsvc` command line: serve, migrate, keys, and administration as the operator.

One module per command group; this one lists them, in the order `authsvc --help` shows them:

- `server`: `serve`, the HTTP service under uvicorn.
- `worker`: `worker`, delivers the outbox (mail) without serving HTTP.
- `database`: `migrate`, `wait-for-db`.
- `users`: `create-superuser`, `users list`.
- `service_clients`: `create-client`.
- `keys`: `keys generate|rotate|retire|list|import|audit-key|reencrypt-data`.

`use_cases` runs a service's use case over the database as the operator (what the `users`
and `service_clients` commands do); `common` reads the settings and ends a command with an
`error:` line. Heavy imports (uvicorn, SQLAlchemy, Alembic, cryptography) live inside the
commands that use them, so `authsvc --help` and light commands start quickly.
"""

from __future__ import annotations

import typer

from app.cli import database, keys, server, service_clients, users, worker

cli = typer.Typer(
    name="authsvc",
    help="Authentication service: users, tokens and keys.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cli.command()(server.serve)
cli.command()(worker.worker)
cli.command()(database.migrate)
cli.command("wait-for-db")(database.wait_for_db)
cli.add_typer(keys.keys_cli)
cli.command("create-superuser")(users.create_superuser)
cli.command("create-client")(service_clients.create_client)
cli.add_typer(users.users_cli)


def main() -> None:
    cli()
