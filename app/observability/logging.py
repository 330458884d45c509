"""Structured JSON logs: structlog for our events, stdlib (uvicorn, `logging.getLogger`) too.

Every line carries an ISO timestamp, the level, the logger name, the event and the request id
bound by `ObservabilityMiddleware`. Secret-looking keys are masked before rendering, as a defence
in depth: the code must not log secrets in the first place.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from app.config import Settings

REDACTED = "[redacted]"
# Keys masked wherever they appear (case-insensitive), and fragments that mark a key secret.
SECRET_KEYS = frozenset({"code", "code_verifier", "state", "nonce", "cookie", "set-cookie"})
SECRET_KEY_FRAGMENTS = ("password", "secret", "token", "authorization", "api_key", "apikey")
# Bearer credentials and JWTs inside free text (stdlib messages are formatted before we see them).
_SECRET_TEXT = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"
    r"|\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
)
# uvicorn's access line would repeat ours, query string included: ours is the one we keep.
_SILENCED_LOGGERS = ("uvicorn.access",)
_ROUTED_LOGGERS = ("uvicorn", "uvicorn.error")
_QUIET_LOGGERS = ("httpx", "httpcore")  # log every outbound URL at INFO

_configured = False


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in SECRET_KEYS or any(part in lowered for part in SECRET_KEY_FRAGMENTS)


def _redact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_key(str(key)) else _redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item) for item in value]
    if isinstance(value, str):
        return _SECRET_TEXT.sub(lambda match: f"{match.group(1) or ''} {REDACTED}".lstrip(), value)
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask values under secret-looking keys and bearer tokens or JWTs inside strings."""
    return {
        key: REDACTED if is_secret_key(key) else _redact(value) for key, value in event_dict.items()
    }


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def json_formatter() -> logging.Formatter:
    """The formatter that renders every record, structlog's or stdlib's, as one JSON line."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ],
    )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is now, not what it was at start-up (test captures)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(settings: Settings) -> None:
    """Route structlog and stdlib logging to one JSON handler on the root logger.

    Idempotent: only the first call in a process configures anything (many apps are built in
    one test run). Handlers others installed (pytest's caplog) are left in place.
    """
    global _configured
    if _configured:
        return
    _configured = True
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
    for name in _SILENCED_LOGGERS:
        logging.getLogger(name).disabled = True
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
