"""RFC 9457 problem details: the one place where errors become HTTP responses."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.challenges import bearer_challenge
from app.api.method_not_allowed import allowed_methods
from app.db_faults import is_connection_lost
from app.errors import (
    BadGateway,
    Conflict,
    DomainError,
    InvalidCredentials,
    InvalidCursor,
    InvalidField,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    Unprocessable,
)
from app.observability.request_id import REQUEST_ID_HEADER
from app.security.password_policy import WeakPassword
from app.services.common.unit_of_work import is_transaction_conflict
from app.services.tokens.recent_authentication import ReauthenticationRequired

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:authsvc:problem:"

# Most specific class first: the first match in the error's MRO wins.
_DOMAIN_STATUS: dict[type[DomainError], tuple[HTTPStatus, str]] = {
    NotFound: (HTTPStatus.NOT_FOUND, "not-found"),
    Conflict: (HTTPStatus.CONFLICT, "conflict"),
    InvalidInput: (HTTPStatus.BAD_REQUEST, "invalid-input"),
    Unprocessable: (HTTPStatus.UNPROCESSABLE_ENTITY, "unprocessable"),
    InvalidCredentials: (HTTPStatus.UNAUTHORIZED, "invalid-credentials"),
    PermissionDenied: (HTTPStatus.FORBIDDEN, "permission-denied"),
    RateLimited: (HTTPStatus.TOO_MANY_REQUESTS, "rate-limited"),
    ServiceUnavailable: (HTTPStatus.SERVICE_UNAVAILABLE, "service-unavailable"),
    BadGateway: (HTTPStatus.BAD_GATEWAY, "bad-gateway"),
}


def problem_response(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A `application/problem+json` response."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _status_for(error: DomainError) -> tuple[HTTPStatus, str]:
    for cls in type(error).__mro__:
        if cls in _DOMAIN_STATUS:
            return _DOMAIN_STATUS[cls]
    return HTTPStatus.BAD_REQUEST, "domain-error"


def _retry_after(error: DomainError) -> dict[str, str] | None:
    seconds = getattr(error, "retry_after_seconds", None)
    return None if seconds is None else {"Retry-After": str(seconds)}


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    status, slug = _status_for(error)
    headers = _retry_after(error)
    challenge = bearer_challenge(request, error, status)
    if challenge:
        headers = {**(headers or {}), "WWW-Authenticate": challenge}
    return problem_response(status, error.detail, type_=TYPE_PREFIX + slug, headers=headers)


async def _reauthentication_required(request: Request, error: Exception) -> JSONResponse:
    # RFC 9470 section 3: the challenge tells the client to sign the user in again, no longer
    # ago than max_age, and retry.
    assert isinstance(error, ReauthenticationRequired)
    challenge = 'Bearer error="insufficient_user_authentication"'
    if error.acr_values:
        challenge += f', acr_values="{error.acr_values}"'
    challenge += f", max_age={error.max_age_seconds}"
    return problem_response(
        HTTPStatus.UNAUTHORIZED,
        error.detail,
        type_=TYPE_PREFIX + "reauthentication-required",
        headers={"WWW-Authenticate": challenge},
        max_age=error.max_age_seconds,
        **({"acr_values": error.acr_values} if error.acr_values else {}),
    )


def _pointer(location: tuple[Any, ...]) -> dict[str, Any]:
    where, *path = location or ("body",)
    entry: dict[str, Any] = {"location": str(where)}
    if path:
        entry["field"] = ".".join(str(part) for part in path)
        if where == "body":
            entry["pointer"] = "#/" + "/".join(str(part) for part in path)
    return entry


async def _weak_password(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, WeakPassword)
    return problem_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        error.detail,
        type_=TYPE_PREFIX + "weak-password",
        errors=[{"pointer": f"/{error.field}", "detail": reason} for reason in error.reasons],
    )


async def _invalid_field(request: Request, error: Exception) -> JSONResponse:
    # The same shape as a request validation error: a client reads one kind of 422, whether
    # the schema or a service's rule refused the field.
    assert isinstance(error, InvalidField)
    path = tuple(error.field.split("/"))
    return problem_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        error.detail,
        type_=TYPE_PREFIX + "validation-error",
        errors=[{**_pointer(("body", *path)), "detail": error.detail}],
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = [
        {**_pointer(tuple(item.get("loc", ()))), "detail": item.get("msg", "invalid value")}
        for item in error.errors()
    ]
    return problem_response(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "The request is not valid; see `errors`.",
        type_=TYPE_PREFIX + "validation-error",
        errors=errors,
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code).phrase
    headers = error.headers
    if error.status_code == HTTPStatus.METHOD_NOT_ALLOWED and (allowed := allowed_methods(request)):
        headers = {**(headers or {}), "Allow": allowed}
    return problem_response(error.status_code, detail, headers=headers)


async def _invalid_cursor(request: Request, error: Exception) -> JSONResponse:
    return problem_response(
        HTTPStatus.BAD_REQUEST,
        "The pagination cursor is not valid.",
        type_=TYPE_PREFIX + "invalid-cursor",
    )


# How long clients should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER_SECONDS = 5
# ... and after a statement hit the statement timeout or the lock wait limit.
DATABASE_BUSY_RETRY_AFTER_SECONDS = 1

# PostgreSQL: query_canceled (statement_timeout), lock_not_available (lock_timeout, NOWAIT),
# too_many_connections. SQLite: SQLITE_BUSY, SQLITE_LOCKED (the writer lock wait ran out).
_BUSY_SQLSTATES = frozenset({"57014", "55P03", "53300"})
_BUSY_SQLITE_CODES = frozenset({5, 6})


def is_database_outage(error: BaseException) -> bool:
    """Whether `error` means the database cannot be reached (down, refusing connections,
    restarting, not answering within the command timeout, or a pooled connection that died),
    as opposed to a bug in a query."""
    if isinstance(error, SQLAlchemyTimeoutError | ConnectionError | TimeoutError):
        return True  # pool exhausted, connection refused or reset, connect or command timed out
    if isinstance(error, DBAPIError):
        if error.connection_invalidated or is_connection_lost(error.orig):
            return True
        return isinstance(error.orig, ConnectionError | TimeoutError | OSError) or (
            type(error.orig).__name__
            in {"ConnectionDoesNotExistError", "CannotConnectNowError", "InterfaceError"}
        )
    return isinstance(error, OSError)


# PostgreSQL: character_not_in_repertoire, untranslatable_character. Text holding U+0000 (or
# a character the database encoding lacks) cannot be stored or even compared: bad input.
_UNSTORABLE_TEXT_SQLSTATES = frozenset({"22021", "22P05"})


def is_unstorable_text(error: BaseException) -> bool:
    """Whether the database refused a text parameter it cannot represent (e.g. a NUL)."""
    return (
        isinstance(error, DBAPIError)
        and getattr(error.orig, "sqlstate", None) in _UNSTORABLE_TEXT_SQLSTATES
    )


def is_database_busy(error: BaseException) -> bool:
    """Whether `error` is the database refusing to wait any longer: a statement cancelled by
    the statement timeout, a lock not granted in time, no free connection slot, a transaction
    aborted by a serialization failure or deadlock."""
    if not isinstance(error, DBAPIError):
        return False
    return (
        is_transaction_conflict(error)  # still conflicting after the retries of its unit of work
        or getattr(error.orig, "sqlstate", None) in _BUSY_SQLSTATES
        or getattr(error.orig, "sqlite_errorcode", None) in _BUSY_SQLITE_CODES
    )


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    if is_unstorable_text(error):
        return problem_response(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "The request holds a character that text here cannot contain (such as U+0000).",
            type_=TYPE_PREFIX + "validation-error",
        )
    if is_database_busy(error):
        reason, retry_after = "busy", DATABASE_BUSY_RETRY_AFTER_SECONDS
    elif is_database_outage(error):
        reason, retry_after = "unavailable", DATABASE_RETRY_AFTER_SECONDS
    else:
        return await _unhandled_error(request, error)
    # Expected during an outage or overload: fail fast with a hint when to retry; no trace.
    logger.warning(
        "database %s on %s %s: %s",
        reason,
        request.method,
        request.url.path,
        type(error).__name__,
    )
    return problem_response(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "The service is temporarily unavailable; try again later.",
        type_=TYPE_PREFIX + "service-unavailable",
        headers={"Retry-After": str(retry_after)},
    )


async def _unhandled_error(request: Request, error: Exception) -> JSONResponse:
    # Starlette runs this outside every middleware, after the request id middleware has
    # unbound the id and without its header: the id it left in the request state goes on the
    # log line, on the response and in the body, for the user to quote when reporting it.
    request_id = getattr(request.state, "request_id", None)
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "An unexpected error occurred.",
        type_=TYPE_PREFIX + "internal-error",
        headers={REQUEST_ID_HEADER: request_id} if request_id else None,
        **({"request_id": request_id} if request_id else {}),
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through problem+json."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(ReauthenticationRequired, _reauthentication_required)
    app.add_exception_handler(WeakPassword, _weak_password)
    app.add_exception_handler(InvalidField, _invalid_field)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(InvalidCursor, _invalid_cursor)
    for outage in (DBAPIError, SQLAlchemyTimeoutError, OSError):
        app.add_exception_handler(outage, _database_error)
    app.add_exception_handler(Exception, _unhandled_error)
