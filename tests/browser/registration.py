"""The relying party registered at the live service as a client of the authorization code
grant, through the admin API as an operator would do it."""

from __future__ import annotations

import httpx

from tests.support.admins import register_any_client
from tests.support.relying_party import RelyingParty

CODE_GRANTS = ["authorization_code", "refresh_token"]


async def register_relying_party(
    service: httpx.AsyncClient,
    headers: dict[str, str],
    rp: RelyingParty,
    *,
    public: bool = False,
    **registration: object,
) -> str:
    """Register `rp` with `headers` (an admin's): the code and refresh grants, its callback and
    its signed-out page; confidential (`client_secret_basic`) unless `public`. `registration`
    adds to or overrides the fields (`is_first_party`, `grant_types`, `scopes`, ...). From now
    on `rp` signs in as that client; its client_id."""
    fields: dict[str, object] = {
        "name": "relying party",
        "grant_types": CODE_GRANTS,
        "redirect_uris": [rp.redirect_uri],
        "post_logout_redirect_uris": [rp.post_logout_redirect_uri],
        **registration,
    }
    if public:
        fields.setdefault("token_endpoint_auth_method", "none")
    created = await register_any_client(service, headers, **fields)
    client_id = str(created["client_id"])
    rp.use_client(client_id, created.get("client_secret"))
    return client_id
