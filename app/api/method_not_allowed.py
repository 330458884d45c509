"""The `Allow` header of a 405: every method some route serves at the requested path."""

from __future__ import annotations

from fastapi import Request
from fastapi.routing import iter_route_contexts
from starlette.routing import Match


def allowed_methods(request: Request) -> str:
    """The methods served at the request's path, comma-separated.

    Starlette answers 405 from the first route whose path matches, naming only its methods;
    FastAPI makes one route per method, so `PATCH /users/me` was told `Allow: GET` alone. This
    runs only on a 405, so walking the routes costs nothing on the normal path.
    """
    scope = {**request.scope, "method": ""}  # no route serves "": every path match is partial
    methods: set[str] = set()
    # Each route as mounted, with the prefixes of the routers that include it.
    for route in iter_route_contexts(request.app.router.routes):
        if route.methods and route.matches(scope)[0] is not Match.NONE:
            methods |= route.methods
    return ", ".join(sorted(methods))
