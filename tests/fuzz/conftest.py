"""The service's own OpenAPI document, fuzzed by schemathesis in-process over ASGI; the
shared fixtures (`app`, `client`, `sessions`) come from tests/conftest.py."""
