"""Reading service-client credentials from a request (RFC 6749 section 2.3.1)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from fastapi import Request

from app.errors import InvalidInput
from app.services.tokens.client_authentication import ClaimedClient, ClientCredentials


class AmbiguousClientAuthentication(InvalidInput):
    default_detail = "Use one client authentication method: HTTP Basic or the form, not both."


class MalformedBasicCredentials(InvalidInput):
    default_detail = "The HTTP Basic credentials are malformed."


class SecretWithoutClientId(InvalidInput):
    default_detail = "`client_secret` was sent without `client_id`."


def client_credentials(
    request: Request, client_id: str | None, client_secret: str | None
) -> ClientCredentials | None:
    """Credentials from `Authorization: Basic` (client_secret_basic) or from the form
    (client_secret_post); None when the request carries neither."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    basic = scheme.lower() == "basic"
    if basic and (client_id is not None or client_secret is not None):
        raise AmbiguousClientAuthentication
    if basic:
        return _from_basic(value.strip())
    if client_id is not None and client_secret is not None:
        return ClientCredentials(client_id, client_secret)
    return None


def claimed_client(
    request: Request, client_id: str | None, client_secret: str | None
) -> ClaimedClient:
    """Who a request to a grant open to public clients says it comes from: credentials
    (HTTP Basic, or `client_id` with `client_secret`), a bare `client_id`, or nobody."""
    credentials = client_credentials(request, client_id, client_secret)
    if credentials is not None:
        return ClaimedClient(credentials=credentials)
    if client_secret is not None:
        raise SecretWithoutClientId
    return ClaimedClient(client_id=client_id)


def _from_basic(value: str) -> ClientCredentials:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedBasicCredentials from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise MalformedBasicCredentials
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before they are joined.
    return ClientCredentials(unquote_plus(client_id), unquote_plus(secret))
