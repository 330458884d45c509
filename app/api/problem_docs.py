"""OpenAPI documentation of the error responses, which leave as RFC 9457 problem+json."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.api.problems import PROBLEM_JSON


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this service is answered."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(description="URI naming the kind of problem (`urn:authsvc:problem:*`).")
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field reasons (validation errors, weak passwords)."
    )
    request_id: str | None = Field(default=None, description="On 500: quote it to support.")


# Inline, not a component: FastAPI documents a model only as application/json.
_PROBLEM_SCHEMA = Problem.model_json_schema()


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting problem+json answers with `statuses`. A 422 among them
    replaces FastAPI's default validation error, whose shape this service does not use."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}},
        }
        for status in statuses
    }
