"""The errors a request can end in, below the API layer: each kind maps to one HTTP problem.

Every layer may raise them (services, the policies they apply, repositories), so they live
here, at the bottom, importing nothing of the app; the API layer maps them in one place."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the request. `detail` is safe to show to the caller."""

    default_detail = "The request could not be completed."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


class NotFound(DomainError):
    default_detail = "The resource does not exist."


class Conflict(DomainError):
    default_detail = "The request conflicts with the current state of the resource."


class EmailAlreadyRegistered(Conflict):
    default_detail = "An account with this email address already exists."


class UsernameTaken(Conflict):
    default_detail = "This username is already taken."


def user_conflict(field: str) -> Conflict:
    """The conflict a duplicate value of the user's unique `field` means to the caller."""
    return UsernameTaken() if field == "username" else EmailAlreadyRegistered()


class InvalidInput(DomainError):
    default_detail = "The request is not valid."


class Unprocessable(DomainError):
    """Well-formed, but names things that do not exist or cannot be used (422)."""

    default_detail = "The request refers to something that does not exist."


class InvalidField(Unprocessable):
    """A field's value breaks a rule (422, the field named like a request validation error).

    `field` is a JSON Pointer into the request body without its leading slash
    (`redirect_uris/0`); `detail` names the field too, for callers without a body (the
    command line)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


class InvalidCredentials(DomainError):
    default_detail = "The credentials are not valid."


class PermissionDenied(DomainError):
    default_detail = "You do not have permission to perform this action."


class RateLimited(DomainError):
    default_detail = "Too many requests; try again later."

    def __init__(
        self, retry_after_seconds: int, detail: str | None = None, *, limit: str | None = None
    ) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds
        # Which named limit refused (for the service's own follow-up; never shown).
        self.limit = limit


class BadGateway(DomainError):
    """An upstream service (an identity provider) answered something unusable (502)."""

    default_detail = "An upstream service gave an invalid answer."


class ServiceUnavailable(DomainError):
    default_detail = "The service is temporarily unavailable; try again later."

    def __init__(self, retry_after_seconds: int = 5, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class InvalidCursor(ValueError):
    """A pagination cursor that this service did not issue."""
