"""API docs: Swagger UI and ReDoc work on a network without internet (their assets come from
the service), and production turns them and the schema off."""

from __future__ import annotations

import base64
import re

import httpx
import jsonschema_rs
import jwt
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31

from app.config import Settings
from tests.hardening.test_production_settings import production
from tests.support.flows import PASSWORD, bearer, register

# Every URL an HTML page makes the browser load: src=, href=, spec-url= and Swagger UI's `url:`.
_REFERENCES = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|\burl:\s*'([^']+)'""")
_ASSET_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def references(html: str) -> list[str]:
    return [first or second for first, second in _REFERENCES.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_nothing_from_another_host(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)

    assert response.status_code == 200
    links = references(response.text)
    assert any(link.endswith(".js") for link in links), links
    for link in links:
        assert link.startswith("/"), link
        assert not link.startswith("//"), link  # a scheme-relative URL is another host
    assert "http://" not in response.text
    assert "https://" not in response.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_every_asset_a_docs_page_references_is_served(
    client: httpx.AsyncClient, page: str
) -> None:
    html = (await client.get(page)).text

    for link in references(html):
        asset = await client.get(link)
        assert asset.status_code == 200, link
        suffix = link[link.rfind(".") :]
        if suffix in _ASSET_TYPES:
            assert _ASSET_TYPES[suffix] in asset.headers["content-type"], link
            assert len(asset.content) > 1000, link  # the real bundle, not a stub


async def test_swagger_ui_authorize_signs_in_as_the_first_party_client(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """The dialog is prefilled with the first-party client id, and the request Swagger UI 5
    then sends by default (client credentials in an Authorization header, no secret, an empty
    `scope`) signs in."""
    page = (await client.get("/docs")).text
    assert f'initOAuth({{"clientId": "{settings.first_party_client_id}"}})' in page
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
    await register(client, "ada@example.com")
    dialog_client = base64.b64encode(f"{settings.first_party_client_id}:".encode()).decode()

    response = await client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "scope": "",
            "username": "ada@example.com",
            "password": PASSWORD,
        },
        headers={"Authorization": f"Basic {dialog_client}"},
    )

    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert (await client.get("/users/me", headers=bearer(token))).status_code == 200
    # A user without two-step sign-in signs in in one step, with the password alone.
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["acr"], claims["amr"]) == ("aal1", ["pwd"])


async def test_the_schema_is_valid_openapi_and_documents_the_second_sign_in_step(
    client: httpx.AsyncClient,
) -> None:
    """What Swagger UI and the fuzz run read: a valid OpenAPI 3.1 document (formats are
    annotations, as in JSON Schema 2020-12: `tokenUrl` is the relative `/auth/token`, which
    OpenAPI allows and Swagger UI resolves), with the MFA grant's fields and the 403
    `mfa_required` body on the token endpoint."""
    schema = (await client.get("/openapi.json")).json()

    meta_schema = jsonschema_rs.Draft202012Validator(OPENAPI_31, validate_formats=False)
    errors = [error.message for error in meta_schema.iter_errors(schema)]
    assert errors == []
    token = schema["paths"]["/auth/token"]["post"]
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    fields = schema["components"]["schemas"][form["$ref"].rsplit("/", 1)[1]]["properties"]
    assert {"grant_type", "username", "password", "mfa_token", "otp", "recovery_code"} <= set(
        fields
    )
    forbidden = token["responses"]["403"]["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/MfaRequiredBody"} in forbidden
    mfa_required = schema["components"]["schemas"]["MfaRequiredBody"]
    assert {"error", "mfa_token", "expires_in"} <= set(mfa_required["required"])


class TestDocsOff:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, object]:
        return {"docs_enabled": False}

    @pytest.mark.parametrize(
        "path",
        [
            "/docs",
            "/redoc",
            "/openapi.json",
            "/docs/oauth2-redirect",
            "/docs/assets/swagger-ui-bundle.js",
        ],
    )
    async def test_docs_and_schema_are_not_served(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.get(path)

        assert response.status_code == 404


def test_docs_are_on_in_development_and_off_in_production_by_default() -> None:
    assert Settings(_env_file=None).should_serve_docs  # type: ignore[call-arg]
    assert not production().should_serve_docs
    assert production(docs_enabled=True).should_serve_docs
