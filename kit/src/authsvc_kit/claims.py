"""The verified claims of an access token, as a read-only mapping."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any


class Claims(Mapping[str, Any]):
    """The claims of a verified access token (or an introspection answer).

    A read-only view of the decoded JSON object; `to_dict()` copies it. The properties read
    the registered claims authsvc sets (RFC 9068): `sub`, `scope`, `client_id`, `roles`, and
    how the user signed in: `auth_time`, `acr` and `amr` (RFC 9470, RFC 8176).
    """

    __slots__ = ("_claims",)

    def __init__(self, claims: dict[str, Any]) -> None:
        self._claims = claims

    def __getitem__(self, name: str) -> Any:
        return self._claims[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._claims)

    def __len__(self) -> int:
        return len(self._claims)

    def __repr__(self) -> str:
        return f"Claims({self._claims!r})"

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the claims, for JSON responses or logging."""
        return dict(self._claims)

    @property
    def subject(self) -> str:
        """`sub`: the user's id (or the client's, for client tokens)."""
        return str(self._claims["sub"])

    @property
    def client_id(self) -> str | None:
        """`client_id`: the OAuth client the token was issued to."""
        value = self._claims.get("client_id")
        return value if isinstance(value, str) else None

    @property
    def scopes(self) -> frozenset[str]:
        """The space-separated `scope` claim as a set (empty if absent)."""
        value = self._claims.get("scope")
        return frozenset(value.split()) if isinstance(value, str) else frozenset()

    @property
    def roles(self) -> tuple[str, ...]:
        """The user's role names (`roles`), empty if absent."""
        value = self._claims.get("roles")
        if not isinstance(value, list):
            return ()
        return tuple(role for role in value if isinstance(role, str))

    @property
    def auth_time(self) -> int | None:
        """`auth_time`: when the user last proved a credential in this session (Unix time;
        RFC 9470). A refresh keeps it; None for client tokens."""
        value = self._claims.get("auth_time")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def acr(self) -> str | None:
        """`acr`: the assurance level of the user's sign-in, `"aal1"` (a password or a
        provider) or `"aal2"` (plus a second factor). A refresh never raises it; None for
        client tokens."""
        value = self._claims.get("acr")
        return value if isinstance(value, str) else None

    @property
    def amr(self) -> tuple[str, ...]:
        """`amr`: how the user signed in (RFC 8176 method names, e.g. `("pwd", "otp")`),
        empty if absent (client tokens)."""
        value = self._claims.get("amr")
        if not isinstance(value, list):
            return ()
        return tuple(method for method in value if isinstance(method, str))

    def has_scopes(self, required: Iterable[str]) -> bool:
        """Whether every scope in `required` was granted."""
        return self.scopes.issuperset(required)
