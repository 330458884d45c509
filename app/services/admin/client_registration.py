"""What a registered client may be: its grant types, redirect URIs, token endpoint
authentication method and first-party flag (client metadata in the words of RFC 7591
section 2), and the rules that tie them together.

The one place these rules live: the admin API (`/admin/clients`) and `authsvc create-client`
both go through `checked_registration`, and a refusal is an `InvalidField` naming the field
(422 over HTTP, exit code 2 on the command line), before anything is written.

Redirect URIs (and post-logout redirect URIs) are matched exactly when they are used, so they
are stored exactly as given, once they pass these rules:

* an absolute URI of visible ASCII characters (no spaces, controls or non-ASCII: an IRI has no
  single spelling to match exactly), at most `URI_MAX_LENGTH` characters, at most
  `URIS_MAX_COUNT` in a list; repeats are dropped, the order kept;
* no fragment (RFC 6749 section 3.1.2) and no user information (`user:pass@`), which only
  serve to disguise where a redirection goes;
* `https` with a host name or IP address (no wildcard: `*` is refused);
* `http` only on a loopback address, `127.0.0.1`, `[::1]` or `localhost`, any port (RFC 8252
  section 7.3, native apps and local development);
* a private-use scheme for native apps (RFC 8252 section 7.1), which must be a reverse domain
  name (it holds a dot: `com.example.app`), followed by `:/`, as in
  `com.example.app:/callback`. The dot rules out `javascript:`, `data:`, `file:` and the
  like, and the slash rules out `example.com:8443/callback`, an https URI missing its scheme.

Grant types and the authentication method go together like this:

* `token_endpoint_auth_method` `none` is a public client (a single-page or native app): it has
  no secret, so it cannot use `client_credentials`, where the secret is the only proof;
* `password` only for a first-party client (`is_first_party`): third-party apps get no
  password grant (RFC 9700 section 2.4);
* `refresh_token` only with a grant that issues refresh tokens: `authorization_code` or
  `password`;
* `authorization_code` needs at least one redirect URI.

A client may have no grant type at all: a resource server that only calls introspection.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn
from urllib.parse import urlsplit

from app.errors import InvalidField


class GrantType(StrEnum):
    authorization_code = "authorization_code"
    refresh_token = "refresh_token"
    client_credentials = "client_credentials"
    password = "password"


class TokenEndpointAuthMethod(StrEnum):
    """How a client proves itself at the token endpoint (RFC 7591 section 2). Both secret
    methods accept the secret either way (see `ClientAuthenticator`); `none` is a public
    client, which has no secret."""

    client_secret_basic = "client_secret_basic"
    client_secret_post = "client_secret_post"
    none = "none"


# What a client registered without saying is: a service client on the client-credentials
# grant, as every client was before these fields existed.
DEFAULT_GRANT_TYPES: tuple[GrantType, ...] = (GrantType.client_credentials,)
DEFAULT_AUTH_METHOD = TokenEndpointAuthMethod.client_secret_basic

URI_MAX_LENGTH = 2000
URIS_MAX_COUNT = 20

_GRANT_TYPES = frozenset(GrantType)
_AUTH_METHODS = frozenset(TokenEndpointAuthMethod)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

# Visible ASCII: no space, no control character, nothing beyond U+007E.
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*\.?")


@dataclass(frozen=True, slots=True)
class ClientRegistration:
    """A client's grant types, redirect URIs, authentication method and first-party flag,
    checked and ready to store."""

    grant_types: list[str]
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    token_endpoint_auth_method: TokenEndpointAuthMethod
    is_first_party: bool

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method is TokenEndpointAuthMethod.none


FIELDS = (
    "grant_types",
    "redirect_uris",
    "post_logout_redirect_uris",
    "token_endpoint_auth_method",
    "is_first_party",
)


def checked_registration(
    *,
    grant_types: Iterable[str],
    redirect_uris: Iterable[str],
    post_logout_redirect_uris: Iterable[str],
    token_endpoint_auth_method: str,
    is_first_party: bool,
    given: Collection[str] = FIELDS,
    previous_auth_method: str | None = None,
) -> ClientRegistration:
    """The registration these values make, or `InvalidField` for the first rule they break.

    `given` names the fields the caller sent (all of them at creation; those in the request
    on a change): only their URIs are checked one by one (the stored ones passed when they
    were stored), and a refusal of a combination names the sent field that made it.
    `previous_auth_method` is the client's method before a change: a client cannot turn
    public or confidential, since a secret is shown only at creation.
    """
    grants = _grant_types(grant_types)
    method = _auth_method(token_endpoint_auth_method)
    redirects = _uris("redirect_uris", redirect_uris, check="redirect_uris" in given)
    logouts = _uris(
        "post_logout_redirect_uris",
        post_logout_redirect_uris,
        check="post_logout_redirect_uris" in given,
    )
    registration = ClientRegistration(grants, redirects, logouts, method, is_first_party)
    if previous_auth_method is not None:
        was_public = previous_auth_method == TokenEndpointAuthMethod.none
        if was_public != registration.is_public:
            raise InvalidField(
                "token_endpoint_auth_method",
                "token_endpoint_auth_method: a client cannot change between public (`none`) "
                "and confidential; register a new client instead.",
            )
    _check_combination(registration, given)
    return registration


def _check_combination(registration: ClientRegistration, given: Collection[str]) -> None:
    grants = set(registration.grant_types)

    def refuse(fields: Sequence[str], detail: str) -> NoReturn:
        # The first of the rule's fields the caller sent: what they changed broke it.
        field = next((field for field in fields if field in given), fields[0])
        raise InvalidField(field, f"{field}: {detail}")

    if registration.is_public and GrantType.client_credentials in grants:
        refuse(
            ("grant_types", "token_endpoint_auth_method"),
            "a public client (token_endpoint_auth_method `none`) has no secret, so it cannot "
            "use client_credentials.",
        )
    if GrantType.password in grants and not registration.is_first_party:
        refuse(
            ("grant_types", "is_first_party"),
            "only a first-party client (is_first_party) may use the password grant.",
        )
    if GrantType.refresh_token in grants and not grants & {
        GrantType.authorization_code,
        GrantType.password,
    }:
        refuse(
            ("grant_types",),
            "refresh_token needs a grant that issues refresh tokens: authorization_code or "
            "password.",
        )
    if GrantType.authorization_code in grants and not registration.redirect_uris:
        refuse(
            ("redirect_uris", "grant_types"),
            "authorization_code needs at least one redirect URI.",
        )


def _grant_types(values: Iterable[str]) -> list[str]:
    grants: list[str] = []
    for index, value in enumerate(values):
        if value not in _GRANT_TYPES:
            raise InvalidField(
                f"grant_types/{index}",
                f"grant_types: unknown grant type {value[:100]!r}; one of {', '.join(GrantType)}.",
            )
        if value not in grants:
            grants.append(GrantType(value).value)
    return grants


def _auth_method(value: str) -> TokenEndpointAuthMethod:
    if value not in _AUTH_METHODS:
        raise InvalidField(
            "token_endpoint_auth_method",
            f"token_endpoint_auth_method: unknown method {value[:100]!r}; one of "
            f"{', '.join(TokenEndpointAuthMethod)}.",
        )
    return TokenEndpointAuthMethod(value)


def _uris(field: str, values: Iterable[str], *, check: bool) -> list[str]:
    uris = list(values)
    if len(uris) > URIS_MAX_COUNT:
        raise InvalidField(field, f"{field}: at most {URIS_MAX_COUNT} URIs.")
    if check:
        for index, uri in enumerate(uris):
            problem = redirect_uri_problem(uri)
            if problem is not None:
                raise InvalidField(f"{field}/{index}", f"{field}: {uri[:100]!r} {problem}.")
    return list(dict.fromkeys(uris))


def redirect_uri_problem(uri: str) -> str | None:
    """What is wrong with `uri` as a redirect URI (see the module's rules), or None."""
    if len(uri) > URI_MAX_LENGTH:
        return f"is longer than {URI_MAX_LENGTH} characters"
    if not _VISIBLE_ASCII.fullmatch(uri):
        return "must be ASCII without spaces or control characters"
    if "#" in uri:
        return "must not have a fragment (#)"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - parsing the port refuses a malformed one
    except ValueError:
        return "is not a valid URI"
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.fullmatch(scheme):
        return "must be an absolute URI, such as https://app.example.com/callback"
    if "@" in parts.netloc:
        return "must not carry user information (user:password@)"
    if scheme == "https":
        return None if _is_host(parts.hostname) else "must name a host"
    if scheme == "http":
        if parts.hostname in LOOPBACK_HOSTS:
            return None
        return "must use https (http only on a loopback address: 127.0.0.1, [::1], localhost)"
    if "." not in scheme or not uri[len(scheme) + 1 :].startswith("/"):
        return (
            "must use https, http on a loopback address, or a private-use scheme in reverse "
            "domain order followed by :/ (com.example.app:/callback)"
        )
    return None


def _is_host(host: str | None) -> bool:
    if not host:
        return False
    if ":" in host:  # an IPv6 literal (urlsplit strips the brackets)
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return False
        return True
    return _HOST_NAME.fullmatch(host) is not None
