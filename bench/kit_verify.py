"""Token verification throughput: authsvc_kit's cached verification against bare PyJWT.

    .venv/bin/python -m bench.kit_verify [--algorithm RS256|ES256|EdDSA ...] [--rounds 7]

In one process, on the same signed tokens: "bare" is the call a resource server would write by
hand with the key already in hand, `jwt.decode(token, key, algorithms=[alg], audience=...,
issuer=...)`; "kit" is `TokenVerifier.verify_cached` (length check, header and `typ` check,
key lookup by kid, the key's own algorithm, required claims, leeway) and "kit async" is
`await TokenVerifier.verify` (adds the JWKS freshness check). The kit's keys come from a JWKS
served by an in-process httpx transport, loaded through the kit's public API.

Each round runs bare, kit and kit async back to back for `--duration` seconds each; the
best round of each side counts (the least disturbed by the rest of the machine). Target:
kit / bare >= 0.9. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from authsvc_kit import JWKSCache, TokenVerifier

ISSUER = "http://authsvc.bench"
AUDIENCE = "authsvc"
ALGORITHMS = ("RS256", "ES256", "EdDSA")
TARGET = 0.9
TOKENS = 256


@dataclass(frozen=True)
class Fixture:
    algorithm: str
    public_key: Any
    tokens: list[str]
    verifier: TokenVerifier


def _private_key(algorithm: str) -> Any:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def build_fixture(algorithm: str) -> Fixture:
    """Signed tokens shaped like authsvc's, and a kit verifier holding their key."""
    private_key = _private_key(algorithm)
    public_key = private_key.public_key()
    kid = f"bench-{algorithm}"
    jwk = json.loads(jwt.get_algorithm_by_name(algorithm).to_jwk(public_key))
    jwks = {"keys": [{**jwk, "kid": kid, "alg": algorithm, "use": "sig"}]}
    now = int(time.time())
    tokens = [
        jwt.encode(
            {
                "iss": ISSUER,
                "aud": AUDIENCE,
                "sub": f"00000000-0000-0000-0000-{n:012d}",
                "client_id": "authsvc-web",
                "scope": "openid profile",
                "roles": ["member"],
                "sid": f"11111111-0000-0000-0000-{n:012d}",
                "ver": 0,
                "jti": f"22222222-0000-0000-0000-{n:012d}",
                "iat": now,
                "exp": now + 3600,
            },
            private_key,
            algorithm=algorithm,
            headers={"typ": "at+jwt", "kid": kid},
        )
        for n in range(TOKENS)
    ]
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=jwks))
    cache = JWKSCache(
        f"{ISSUER}/.well-known/jwks.json", http_client=httpx.AsyncClient(transport=transport)
    )
    verifier = TokenVerifier(ISSUER, AUDIENCE, cache)
    asyncio.run(cache.refresh())
    return Fixture(algorithm, public_key, tokens, verifier)


def rate(verify: Callable[[str], object], tokens: Sequence[str], duration: float) -> float:
    """Verifications per second over at least `duration` seconds (whole passes over tokens)."""
    done = 0
    start = time.perf_counter()
    deadline = start + duration
    while True:
        for token in tokens:
            verify(token)
        done += len(tokens)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def async_rate(verifier: TokenVerifier, tokens: Sequence[str], duration: float) -> float:
    async def run() -> float:
        done = 0
        start = time.perf_counter()
        deadline = start + duration
        while True:
            for token in tokens:
                await verifier.verify(token)
            done += len(tokens)
            now = time.perf_counter()
            if now >= deadline:
                return done / (now - start)

    return asyncio.run(run())


def measure(fixture: Fixture, rounds: int, duration: float) -> dict[str, float]:
    key, algorithm = fixture.public_key, fixture.algorithm

    def bare(token: str) -> object:
        return jwt.decode(token, key, algorithms=[algorithm], audience=AUDIENCE, issuer=ISSUER)

    kit = fixture.verifier.verify_cached
    # Same answers before timing anything.
    for token in fixture.tokens[:4]:
        assert bare(token) == kit(token).to_dict()
    best = {"bare": 0.0, "kit": 0.0, "kit_async": 0.0}
    rate(bare, fixture.tokens, duration / 2)  # warm-up
    for _ in range(rounds):
        best["bare"] = max(best["bare"], rate(bare, fixture.tokens, duration))
        best["kit"] = max(best["kit"], rate(kit, fixture.tokens, duration))
        best["kit_async"] = max(
            best["kit_async"], async_rate(fixture.verifier, fixture.tokens, duration)
        )
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.kit_verify", description=__doc__.splitlines()[0])
    parser.add_argument("--algorithm", action="append", choices=ALGORITHMS)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--duration", type=float, default=0.5, help="seconds per side per round")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    for algorithm in args.algorithm or ALGORITHMS:
        best = measure(build_fixture(algorithm), args.rounds, args.duration)
        results[algorithm] = {
            **best,
            "ratio": best["kit"] / best["bare"],
            "ratio_async": best["kit_async"] / best["bare"],
        }
    passed = all(result["ratio"] >= TARGET for result in results.values())
    if args.json:
        print(json.dumps({"target": TARGET, "passed": passed, "results": results}, indent=2))
    else:
        columns = ("bare/s", "kit/s", "async/s", "kit÷bare", "async÷bare")
        print(f"{'alg':<6} " + " ".join(f"{column:>10}" for column in columns))
        for algorithm, r in results.items():
            verdict = "ok" if r["ratio"] >= TARGET else f"MISSED (target >= {TARGET})"
            print(
                f"{algorithm:<6} {r['bare']:>10.0f} {r['kit']:>10.0f} {r['kit_async']:>10.0f} "
                f"{r['ratio']:>10.3f} {r['ratio_async']:>10.3f}  {verdict}"
            )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
