"""Authorization requests (`GET /oauth/authorize`, OpenID Connect Core 3.1.2.1, RFC 6749 4.1.1,
RFC 7636): what is asked, checked against the client's registration.

Two kinds of refusal, in this order (RFC 6749 section 4.1.2.1):
- `AuthorizationTargetInvalid`: the client is unknown or disabled, or `redirect_uri` is missing
  or not registered. Nowhere is known to be safe to send the browser, so the user sees an
  error page and nothing is redirected.
- `AuthorizationRefused`: anything else (no PKCE, `plain` PKCE, a bad scope or prompt ...),
  sent back to the client's redirect URI with `error`, `state` and `iss`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from app.errors import DomainError
from app.models import ServiceClient
from app.security.pkce import is_s256_challenge
from app.services.admin.client_registration import GrantType
from app.services.authorization.redirection import is_registered_redirect
from app.services.tokens.scopes import BASIC_SCOPES

PROMPTS = frozenset({"none", "login", "consent", "select_account"})
STATE_MAX_LENGTH = 2000
NONCE_MAX_LENGTH = 512
LOGIN_HINT_MAX_LENGTH = 320
# Parameters that name where the answer goes: a repeat of one is an error page, not a redirect.
_TARGET_PARAMETERS = ("client_id", "redirect_uri")


class AuthorizationTargetInvalid(DomainError):
    """The request cannot be answered by redirecting: unknown client or redirect URI."""

    default_detail = (
        "This sign-in link is not valid: the application is unknown or its return address "
        "is not registered."
    )


class AuthorizationRefused(DomainError):
    """An OAuth error to redirect back to the client with (RFC 6749 section 4.1.2.1)."""

    def __init__(
        self, error: str, description: str, *, redirect_uri: str, state: str | None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A checked authorization request for a registered client."""

    client_id: str
    client_name: str
    is_first_party: bool
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: frozenset[str]
    max_age: int | None
    login_hint: str | None
    # The request's own parameters, to come back to it after the sign-in or consent page.
    parameters: tuple[tuple[str, str], ...]

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)

    def refuse(self, error: str, description: str) -> AuthorizationRefused:
        return AuthorizationRefused(
            error, description, redirect_uri=self.redirect_uri, state=self.state
        )

    def query(self, *, after_sign_in: bool = False) -> str:
        """The request as a query string. `after_sign_in` drops what the sign-in just
        satisfied (`prompt=login`, `max_age`), so coming back does not ask again."""
        parameters: Iterable[tuple[str, str]] = self.parameters
        if after_sign_in:
            parameters = [
                (name, _without_login(value) if name == "prompt" else value)
                for name, value in parameters
                if name != "max_age"
            ]
        return urlencode([(name, value) for name, value in parameters if value != ""])


def _without_login(prompt: str) -> str:
    return " ".join(value for value in prompt.split() if value not in {"login", "select_account"})


def parse_query(query: str) -> list[tuple[str, str]]:
    """A query string's parameters in order, repeats kept (they are refused later)."""
    return parse_qsl(query, keep_blank_values=True)


def check_request(
    parameters: Sequence[tuple[str, str]], client: ServiceClient | None
) -> AuthorizationRequest:
    """`parameters` as an `AuthorizationRequest` for `client` (looked up by the request's
    `client_id`), or the refusal it earns."""
    values: dict[str, str] = {}
    repeated: set[str] = set()
    for name, value in parameters:
        if name in values:
            repeated.add(name)
        values[name] = value
    if repeated & set(_TARGET_PARAMETERS):
        raise AuthorizationTargetInvalid("client_id and redirect_uri may each be sent only once.")
    redirect_uri = values.get("redirect_uri", "")
    if client is None or not client.is_active:
        raise AuthorizationTargetInvalid("This application is unknown or disabled.")
    if not redirect_uri or not is_registered_redirect(redirect_uri, client.redirect_uris):
        raise AuthorizationTargetInvalid(
            "The return address (redirect_uri) is not one registered for this application."
        )
    state = values.get("state") or None
    if state is not None and len(state) > STATE_MAX_LENGTH:
        state = None  # not echoed back: it could be used to make the redirect huge

    def refused(error: str, description: str) -> AuthorizationRefused:
        return AuthorizationRefused(error, description, redirect_uri=redirect_uri, state=state)

    if repeated:
        raise refused(
            "invalid_request", f"Parameters sent more than once: {', '.join(sorted(repeated))}."
        )
    if "request" in values:
        raise refused("request_not_supported", "Request objects are not supported.")
    if "request_uri" in values:
        raise refused("request_uri_not_supported", "request_uri is not supported.")
    response_type = values.get("response_type")
    if not response_type:
        raise refused("invalid_request", "response_type is required.")
    if response_type != "code":
        raise refused("unsupported_response_type", "Only response_type=code is supported.")
    if values.get("response_mode", "query") != "query":
        raise refused("invalid_request", "Only response_mode=query is supported.")
    if GrantType.authorization_code not in client.grant_types:
        raise refused("unauthorized_client", "This client may not use the authorization code flow.")
    if state is None and values.get("state"):
        raise refused("invalid_request", f"state is longer than {STATE_MAX_LENGTH} characters.")
    challenge = values.get("code_challenge")
    method = values.get("code_challenge_method")
    if not challenge:
        raise refused("invalid_request", "code_challenge is required (PKCE with S256).")
    if method != "S256":
        raise refused("invalid_request", "code_challenge_method must be S256.")
    if not is_s256_challenge(challenge):
        raise refused(
            "invalid_request", "code_challenge is not an S256 challenge (43 base64url characters)."
        )
    nonce = values.get("nonce") or None
    if nonce is not None and len(nonce) > NONCE_MAX_LENGTH:
        raise refused("invalid_request", f"nonce is longer than {NONCE_MAX_LENGTH} characters.")
    scopes = tuple(dict.fromkeys(values.get("scope", "").split()))
    unknown = set(scopes) - BASIC_SCOPES - set(client.scopes)
    if unknown:
        raise refused(
            "invalid_scope", f"Not a scope this client may ask for: {' '.join(sorted(unknown))}."
        )
    prompt = frozenset(values.get("prompt", "").split())
    if prompt - PROMPTS:
        raise refused(
            "invalid_request", f"Unknown prompt value: {' '.join(sorted(prompt - PROMPTS))}."
        )
    if "none" in prompt and len(prompt) > 1:
        raise refused("invalid_request", "prompt=none cannot be combined with other values.")
    try:
        max_age = _max_age(values.get("max_age"))
    except ValueError:
        raise refused("invalid_request", "max_age must be a whole number of seconds.") from None
    login_hint = values.get("login_hint") or None
    if login_hint is not None and len(login_hint) > LOGIN_HINT_MAX_LENGTH:
        login_hint = None
    return AuthorizationRequest(
        client_id=client.client_id,
        client_name=client.name,
        is_first_party=client.is_first_party,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        prompt=prompt,
        max_age=max_age,
        login_hint=login_hint,
        parameters=tuple((name, value) for name, value in parameters),
    )


def _max_age(value: str | None) -> int | None:
    """`max_age` in seconds; ValueError unless it is a whole number (at most ten digits)."""
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        raise ValueError(value)
    return int(value)
