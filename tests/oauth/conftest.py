"""Fixtures of the sign-in-with-a-provider tests.

- `standin`: a real OpenID Connect provider over HTTP (one per worker, reset for each test),
  configured as provider "acme", and as "acme-two" (a second registration at the same
  provider, for tests that need two links).
- `github`, `google`: in-process fakes of those APIs, behind the runtime's `oauth_http`.
- `sessions`: database sessions of the app under test, to check state.

The browser's part of a flow is in `tests/oauth/flows.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI

from app.runtime import install_runtime, runtime_of
from tests.oauth.fake_providers import GitHubFake, GoogleFake, ProviderMocks
from tests.oauth.flows import FRONTEND_CALLBACK, SERVICE_URL, own_callback
from tests.oauth.provider_standin import OIDCStandin

CLIENT_ID = "authsvc-test"
CLIENT_SECRET = "s3cret"
GITHUB_CLIENT_ID = "gh-id"
GITHUB_CLIENT_SECRET = "gh-secret"
GOOGLE_CLIENT_ID = "g-id.apps.googleusercontent.com"
GOOGLE_CLIENT_SECRET = "g-secret"
# Low, so that a provider that hangs costs a test a few seconds; generous enough for a
# loaded machine talking to a server on loopback.
HTTP_TIMEOUT_SECONDS = 3.0


def oidc_provider(standin: OIDCStandin) -> dict[str, object]:
    return {
        "kind": "oidc",
        "discovery_url": standin.discovery_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": ["openid", "email", "profile"],
    }


def provider_settings(standin: OIDCStandin, **overrides: object) -> dict[str, object]:
    """Settings wiring "acme" and "acme-two" to `standin`, plus GitHub and Google; every
    provider's own callback and the frontend's callback are allowed redirect URIs."""
    return {
        "oauth_providers": {
            "acme": oidc_provider(standin),
            "acme-two": oidc_provider(standin),
            "github": {"client_id": GITHUB_CLIENT_ID, "client_secret": GITHUB_CLIENT_SECRET},
            "google": {"client_id": GOOGLE_CLIENT_ID, "client_secret": GOOGLE_CLIENT_SECRET},
        },
        "oauth_redirect_uris": [
            FRONTEND_CALLBACK,
            *(own_callback(name) for name in ("acme", "acme-two", "github", "google")),
        ],
        "oauth_http_timeout_seconds": HTTP_TIMEOUT_SECONDS,
        "public_url": SERVICE_URL,
        **overrides,
    }


@pytest.fixture(scope="session")
def standin_server() -> Iterator[OIDCStandin]:
    standin = OIDCStandin(client_id=CLIENT_ID, client_secret=CLIENT_SECRET).start()
    yield standin
    standin.stop()


@pytest.fixture
def standin(standin_server: OIDCStandin) -> Iterator[OIDCStandin]:
    """The worker's stand-in, healthy and empty at the start of the test."""
    standin_server.reset()
    yield standin_server
    standin_server.reset()  # also releases a request left hanging


@pytest.fixture
def settings_overrides(standin: OIDCStandin) -> dict[str, object]:
    return provider_settings(standin)


@pytest.fixture
async def provider_mocks(app: FastAPI) -> AsyncIterator[ProviderMocks]:
    """GitHub and Google fakes behind the service's outbound HTTP client."""
    mocks = ProviderMocks(
        GitHubFake(client_id=GITHUB_CLIENT_ID, client_secret=GITHUB_CLIENT_SECRET),
        GoogleFake(client_id=GOOGLE_CLIENT_ID, client_secret=GOOGLE_CLIENT_SECRET),
    )
    runtime = runtime_of(app)
    await runtime.oauth_http.aclose()
    http = httpx.AsyncClient(transport=mocks.transport)
    install_runtime(app, replace(runtime, oauth_http=http))
    yield mocks
    await http.aclose()


@pytest.fixture
def github(provider_mocks: ProviderMocks) -> GitHubFake:
    return provider_mocks.github


@pytest.fixture
def google(provider_mocks: ProviderMocks) -> GoogleFake:
    return provider_mocks.google
