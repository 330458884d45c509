"""The protocol side of an OAuth 2.0 / OpenID Connect provider, without any transport.

`AuthorizationServer` checks authorization requests, hands out single-use codes bound to the
PKCE challenge, nonce, redirect URI and identity, redeems them at its token endpoint (client
authentication, PKCE S256, redirect URI match) and signs ID tokens with its own RSA key. The
real stand-in (`provider_standin.py`) serves it over HTTP; the GitHub and Google fakes
(`fake_providers.py`) answer with it through `httpx.MockTransport`.

Tests do not drive a browser: `approve(authorization_url, identity)` plays the user who signs
in at the provider and consents, and returns the `(code, state)` the provider would send back
to the redirect URI.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import parse_qs, unquote_plus, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

IdentityT = TypeVar("IdentityT")
ClientAuthentication = Literal["client_secret_basic", "client_secret_post"]

# RFC 7636: an S256 challenge is the unpadded base64url of a SHA-256 digest (43 characters);
# a verifier is 43 to 128 characters of the unreserved set.
CODE_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
CODE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
ID_TOKEN_LIFETIME_SECONDS = 300


@functools.cache
def rsa_key(label: str) -> rsa.RSAPrivateKey:
    """One RSA key per label and test process: generating keys per test would be slow."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def s256(code_verifier: str) -> str:
    """The PKCE S256 challenge of a verifier."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Identity:
    """A user as an OpenID Connect provider knows them."""

    sub: str
    email: str | None = None
    email_verified: bool = True
    name: str | None = None

    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": self.sub}
        if self.email is not None:
            claims["email"] = self.email
            claims["email_verified"] = self.email_verified
        if self.name is not None:
            claims["name"] = self.name
        return claims


@dataclass(frozen=True, slots=True)
class Client:
    """A client registered at the provider; `redirect_uris` None accepts any redirect URI."""

    client_id: str
    client_secret: str
    redirect_uris: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Grant(Generic[IdentityT]):
    """What an authorization code stands for."""

    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    nonce: str | None
    identity: IdentityT


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """One request the token endpoint received, as the test wants to inspect it."""

    form: dict[str, str]
    client_authentication: ClientAuthentication | None


@dataclass(slots=True)
class IdTokenTampering:
    """Changes to the next ID token, for negative tests. A claim set to None is dropped."""

    claims: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    key: rsa.RSAPrivateKey | None = None
    unsigned: bool = False


class AuthorizationRejected(AssertionError):
    """The authorization request breaks the protocol: the implementation under test is wrong.
    An AssertionError, so that the test fails with the reason."""


class TokenError(Exception):
    """An RFC 6749 error answer of the token endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class AuthorizationServer(Generic[IdentityT]):
    """Codes, PKCE, client authentication and ID tokens of one provider. Thread-safe: the
    stand-in's server thread and the test both call it."""

    def __init__(
        self,
        *,
        issuer: str,
        authorization_endpoint: str,
        clients: list[Client],
        requires_openid: bool = True,
        key_label: str = "standin",
        kid: str = "standin-key-1",
    ) -> None:
        self.issuer = issuer
        self.authorization_endpoint = authorization_endpoint
        self.clients = {client.client_id: client for client in clients}
        self.requires_openid = requires_openid
        self.key = rsa_key(key_label)
        self.kid = kid
        self._lock = threading.Lock()
        self._codes: dict[str, Grant[IdentityT]] = {}
        self._access_tokens: dict[str, Grant[IdentityT]] = {}
        self._tampering: IdTokenTampering | None = None
        self.token_requests: list[TokenRequest] = []

    def reset(self) -> None:
        """Forget codes, tokens, recorded requests and pending tampering."""
        with self._lock:
            self._codes.clear()
            self._access_tokens.clear()
            self._tampering = None
            self.token_requests.clear()

    # --- the user at the provider -------------------------------------------------------

    def check_authorization_request(self, query: dict[str, list[str]]) -> dict[str, str]:
        """The parameters of a valid authorization request; AuthorizationRejected otherwise."""
        repeated = [name for name, values in query.items() if len(values) != 1]
        if repeated:
            raise AuthorizationRejected(f"repeated authorization parameters: {repeated}")
        params = {name: values[0] for name, values in query.items()}
        if params.get("response_type") != "code":
            raise AuthorizationRejected(f"response_type must be code: {params}")
        client = self.clients.get(params.get("client_id", ""))
        if client is None:
            raise AuthorizationRejected(f"unknown client_id: {params.get('client_id')!r}")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            raise AuthorizationRejected(f"redirect_uri must be an absolute URL: {redirect_uri!r}")
        if client.redirect_uris is not None and redirect_uri not in client.redirect_uris:
            raise AuthorizationRejected(f"redirect_uri not registered: {redirect_uri!r}")
        if not params.get("state"):
            raise AuthorizationRejected("no state")
        if params.get("code_challenge_method") != "S256":
            raise AuthorizationRejected("code_challenge_method must be S256")
        if not CODE_CHALLENGE.fullmatch(params.get("code_challenge", "")):
            raise AuthorizationRejected(f"malformed code_challenge: {params.get('code_challenge')}")
        if self.requires_openid:
            if "openid" not in params.get("scope", "").split():
                raise AuthorizationRejected(f"scope lacks openid: {params.get('scope')!r}")
            if not params.get("nonce"):
                raise AuthorizationRejected("an OpenID Connect request needs a nonce")
        return params

    def approve(self, authorization_url: str, identity: IdentityT) -> tuple[str, str]:
        """The user signs in as `identity` and consents: the `(code, state)` sent back."""
        url = urlsplit(authorization_url)
        endpoint = f"{url.scheme}://{url.netloc}{url.path}"
        if endpoint != self.authorization_endpoint:
            raise AuthorizationRejected(
                f"authorization URL {endpoint!r} is not {self.authorization_endpoint!r}"
            )
        params = self.check_authorization_request(parse_qs(url.query, keep_blank_values=True))
        code = secrets.token_urlsafe(24)
        grant = Grant(
            client_id=params["client_id"],
            redirect_uri=params["redirect_uri"],
            scope=params.get("scope", ""),
            code_challenge=params["code_challenge"],
            nonce=params.get("nonce"),
            identity=identity,
        )
        with self._lock:
            self._codes[code] = grant
        return code, params["state"]

    # --- the token endpoint --------------------------------------------------------------

    def redeem(
        self, form: dict[str, str], authorization: str | None
    ) -> tuple[Grant[IdentityT], str]:
        """Check a token request and spend its code: the grant and a new access token."""
        client, method = self._authenticate(form, authorization)
        with self._lock:
            self.token_requests.append(TokenRequest(dict(form), method))
        if form.get("grant_type") != "authorization_code":
            raise TokenError("unsupported_grant_type", f"grant_type {form.get('grant_type')!r}")
        with self._lock:
            # Spent whatever happens next, as RFC 6749 §4.1.2 asks of a code.
            grant = self._codes.pop(form.get("code", ""), None)
        if grant is None:
            raise TokenError("invalid_grant", "unknown, expired or already used code")
        if grant.client_id != client.client_id:
            raise TokenError("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise TokenError("invalid_grant", "redirect_uri differs from the authorization's")
        verifier = form.get("code_verifier", "")
        if not CODE_VERIFIER.fullmatch(verifier) or s256(verifier) != grant.code_challenge:
            raise TokenError("invalid_grant", "PKCE verification failed")
        access_token = secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens[access_token] = grant
        return grant, access_token

    def _authenticate(
        self, form: dict[str, str], authorization: str | None
    ) -> tuple[Client, ClientAuthentication]:
        basic = _basic_credentials(authorization)
        posted = form.get("client_secret")
        if basic is not None and posted is not None:
            raise TokenError("invalid_request", "more than one client authentication method")
        if basic is not None:
            client_id, secret = basic
            method: ClientAuthentication = "client_secret_basic"
        elif posted is not None:
            client_id, secret = form.get("client_id", ""), posted
            method = "client_secret_post"
        else:
            raise TokenError("invalid_client", "no client authentication", status=401)
        client = self.clients.get(client_id)
        if client is None or not secrets.compare_digest(client.client_secret, secret):
            raise TokenError("invalid_client", "client authentication failed", status=401)
        return client, method

    def grant_for(self, authorization: str | None) -> Grant[IdentityT] | None:
        """The grant behind a bearer access token (for userinfo and APIs)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        with self._lock:
            return self._access_tokens.get(token.strip())

    # --- ID tokens -----------------------------------------------------------------------

    def alter_next_id_token(self, *, header: dict[str, Any] | None = None, **claims: Any) -> None:
        """Change claims (None drops one) or header members of the next ID token."""
        with self._lock:
            self._tampering = IdTokenTampering(claims=claims, header=header or {})

    def forge_next_id_token(self, *, kid: str | None = None) -> None:
        """Sign the next ID token with a key that is not the provider's, under the provider's
        own `kid` unless another is given."""
        with self._lock:
            self._tampering = IdTokenTampering(
                key=rsa_key("forger"), header={"kid": kid} if kid else {}
            )

    def send_unsigned_next_id_token(self) -> None:
        """Make the next ID token `alg: none`."""
        with self._lock:
            self._tampering = IdTokenTampering(unsigned=True)

    def id_token(self, grant: Grant[Identity]) -> str:
        with self._lock:
            tampering, self._tampering = self._tampering or IdTokenTampering(), None
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "azp": grant.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME_SECONDS,
            **grant.identity.claims(),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        claims.update(tampering.claims)
        claims = {name: value for name, value in claims.items() if value is not None}
        if tampering.unsigned:
            return jwt.encode(claims, "", algorithm="none", headers={"kid": self.kid})
        headers = {"kid": self.kid, **tampering.header}
        return jwt.encode(claims, tampering.key or self.key, algorithm="RS256", headers=headers)

    def jwks(self) -> dict[str, Any]:
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise TokenError("invalid_client", "malformed Basic credentials", status=401) from None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        raise TokenError("invalid_client", "malformed Basic credentials", status=401)
    # RFC 6749 §2.3.1: both parts are form-encoded before they are joined.
    return unquote_plus(client_id), unquote_plus(secret)
