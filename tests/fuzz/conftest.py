"""The service's own OpenAPI document, fuzzed by schemathesis against the live service."""

from __future__ import annotations

from tests.live_server import live_service, service_client

__all__ = ["live_service", "service_client"]  # fixtures
