"""`authsvc serve`: the HTTP service under uvicorn."""

from __future__ import annotations

import typer

from app.cli.common import load_settings


def serve(
    host: str | None = typer.Option(None, help="Bind address (default: AUTH_HOST)."),
    port: int | None = typer.Option(None, help="Port (default: AUTH_PORT)."),
) -> None:
    """Run the HTTP service with uvicorn."""
    import uvicorn

    from app.http_server import BoundedHeadersProtocol

    settings = load_settings()
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
