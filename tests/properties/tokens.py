"""Valid, mutated, spliced, forged and made-up access tokens for the codec and kit properties."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from hypothesis import assume
from hypothesis import strategies as st

from app.security.access_tokens import AccessTokenCodec
from app.security.keys.signing_key import SUPPORTED_ALGORITHMS, Algorithm, SigningKey
from tests.properties.strategies import (
    access_claims,
    json_values,
    mutation_characters,
    unicode_text,
)

ISSUER: Final = "https://auth.example"
AUDIENCE: Final = "authsvc"
TTL: Final = 900
LEEWAY: Final = 30  # the codec's and the kit's default
JWKS_URL: Final = f"{ISSUER}/.well-known/jwks.json"

algorithms = st.sampled_from(SUPPORTED_ALGORITHMS)


@dataclass(frozen=True)
class Service:
    """Per algorithm, a codec signing with that algorithm's key; every ring holds all keys."""

    keys: dict[Algorithm, SigningKey]
    codecs: dict[Algorithm, AccessTokenCodec]

    @property
    def codec(self) -> AccessTokenCodec:
        """A codec that verifies every algorithm's tokens (all keys are in each ring)."""
        return self.codecs["RS256"]

    def codec_like(self, algorithm: Algorithm, **changes: Any) -> AccessTokenCodec:
        """A codec over the same keys with another issuer, audience, lifetime or clock."""
        codec = self.codecs[algorithm]
        options: dict[str, Any] = {
            "issuer": codec.issuer,
            "audience": codec.audience,
            "ttl_seconds": codec.ttl_seconds,
            **changes,
        }
        return AccessTokenCodec(codec.keys, **options)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(data: Any) -> str:
    return b64(json.dumps(data).encode())


def now_claims(**changes: Any) -> dict[str, Any]:
    """Registered claims that pass every check now, for tokens signed outside the codec."""
    issued_at = int(time.time())
    claims = {"sub": "user-1", "iss": ISSUER, "aud": AUDIENCE, "iat": issued_at}
    return {**claims, "exp": issued_at + TTL, **changes}


def sign(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    """`claims` signed properly by `key`, with `header` over the default `typ` and `kid`."""
    assert key.private_key is not None
    headers = {"typ": "at+jwt", "kid": key.kid, **header}
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers=headers)


def hmac_forged(key: SigningKey, claims: dict[str, Any], alg: str, secret: bytes | None) -> str:
    """A token naming `key` and claiming `alg`, its signature an HMAC-SHA256 over `secret`
    (None: an empty signature, as `alg: none` has)."""
    head = b64json({"typ": "at+jwt", "kid": key.kid, "alg": alg})
    signing_input = f"{head}.{b64json(claims)}"
    if secret is None:
        return f"{signing_input}."
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(digest)}"


def public_key_secrets(key: SigningKey) -> list[bytes]:
    """Every spelling of the public key an HMAC forger might use as the shared secret."""
    pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    der = key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return [pem, pem.strip(), der, json.dumps(key.public_jwk()).encode(), key.kid.encode(), b""]


# --- strategies ---------------------------------------------------------------------------


@st.composite
def minted(draw: st.DrawFn, service: Service) -> str:
    """A token the service issues: any algorithm, any claims."""
    return service.codecs[draw(algorithms)].encode(draw(access_claims()))


@st.composite
def mutated(draw: st.DrawFn, token: str) -> str:
    """`token` with one character replaced, deleted or inserted, or cut short."""
    kind = draw(st.sampled_from(["replace", "delete", "insert", "truncate"]))
    if kind == "truncate":
        return token[: draw(st.integers(0, len(token) - 1))]
    index = draw(st.integers(0, len(token) - (0 if kind == "insert" else 1)))
    if kind == "delete":
        return token[:index] + token[index + 1 :]
    if kind == "insert":
        return token[:index] + draw(mutation_characters) + token[index:]
    replacement = draw(mutation_characters.filter(lambda character: character != token[index]))
    return token[:index] + replacement + token[index + 1 :]


@st.composite
def spliced(draw: st.DrawFn, service: Service) -> str:
    """A token made of the segments of two issued tokens, equal to neither."""
    first, second = draw(minted(service)), draw(minted(service))
    from_second = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    segments = zip(first.split("."), second.split("."), from_second, strict=True)
    token = ".".join(b if use_b else a for a, b, use_b in segments)
    # Same-algorithm tokens share their header segment, so some splices are a whole token.
    assume(token not in (first, second))
    return token


@st.composite
def made_up(draw: st.DrawFn, service: Service) -> str:
    """Text an attacker might send: noise, or dot-separated base64 of JSON that names real
    kids, algorithms and types, with a random signature."""
    if draw(st.booleans()):
        noise = st.one_of(unicode_text, st.binary().map(lambda raw: raw.decode("latin-1")))
        return draw(noise)
    header = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "kid": st.sampled_from([key.kid for key in service.keys.values()]) | json_values,
                "alg": st.sampled_from([*SUPPORTED_ALGORITHMS, "none", "HS256"]) | json_values,
                "typ": st.sampled_from(["at+jwt", "JWT"]) | json_values,
                "crit": json_values,
            },
        )
        | json_values
    )
    payload = draw(st.one_of(st.just(now_claims()), json_values))
    signature = draw(st.binary(max_size=300))
    return f"{b64json(header)}.{b64json(payload)}.{b64(signature)}"


@st.composite
def alg_confused(draw: st.DrawFn, service: Service) -> str:
    """Valid claims under a real kid, signed with anything but that key in its algorithm:
    `alg: none`, HMAC keyed with the public key, or another published key."""
    key = service.keys[draw(algorithms)]
    claims = now_claims()
    attack = draw(st.sampled_from(["none", "hmac", "other key"]))
    if attack == "none":
        alg = draw(st.sampled_from(["none", "None", "NONE", "nOnE", ""]))
        return hmac_forged(key, claims, alg, None)
    if attack == "hmac":
        alg = draw(st.sampled_from(["HS256", "HS384", "HS512", key.algorithm]))
        return hmac_forged(key, claims, alg, draw(st.sampled_from(public_key_secrets(key))))
    signer = service.keys[draw(algorithms.filter(lambda name: name != key.algorithm))]
    return sign(signer, claims, kid=key.kid)
