"""Administration of registered clients: register, list, read, change, delete. Needs
`clients:write`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app.api.deps import CallerDep, ClientAdminServiceDep
from app.api.permissions import ClientsWriter
from app.api.problem_docs import problem_responses
from app.schemas.admin.service_clients import ClientCreate, ClientCreated, ClientRead, ClientUpdate
from app.schemas.pagination import DEFAULT_LIMIT, Cursor, Limit, PageOut

# 413: two lists of 20 redirect URIs of 2,000 characters can outgrow AUTH_MAX_BODY_BYTES.
router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
)


ClientIdPath = Annotated[str, Path(max_length=64)]


@router.get("/clients", response_model=PageOut[ClientRead])
async def list_clients(
    actor: ClientsWriter,
    service: ClientAdminServiceDep,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> PageOut[ClientRead]:
    """Service clients, newest first. Secrets are never listed."""
    page = await service.list_clients(actor, limit=limit, cursor=cursor)
    return PageOut(
        items=[ClientRead.model_validate(item) for item in page.items],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/clients",
    status_code=status.HTTP_201_CREATED,
    response_model=ClientCreated,
    response_model_exclude_none=True,
)
async def create_client(
    body: ClientCreate,
    actor: ClientsWriter,
    service: ClientAdminServiceDep,
    caller: CallerDep,
    response: Response,
) -> ClientCreated:
    """Register a client. `client_secret` is shown in this response only: store it now. A
    public client (`token_endpoint_auth_method` `none`) gets no secret."""
    # The body's fields are the service's keyword arguments, one for one.
    service_client, secret = await service.create(actor, **body.model_dump(), caller=caller)
    response.headers["Cache-Control"] = "no-store"
    return ClientCreated(
        **ClientRead.model_validate(service_client).model_dump(), client_secret=secret
    )


@router.get("/clients/{client_id}", response_model=ClientRead)
async def read_client(
    client_id: ClientIdPath, actor: ClientsWriter, service: ClientAdminServiceDep
) -> ClientRead:
    return ClientRead.model_validate(await service.get(actor, client_id))


@router.patch("/clients/{client_id}", response_model=ClientRead)
async def update_client(
    client_id: ClientIdPath,
    body: ClientUpdate,
    actor: ClientsWriter,
    service: ClientAdminServiceDep,
    caller: CallerDep,
) -> ClientRead:
    """Rename, disable (`is_active: false`), re-scope a client or change its grant types,
    redirect URIs, authentication method or first-party flag; fields left out stay as they
    are. Secrets cannot be read or changed here: to rotate one, or to turn a client public or
    confidential, create a new client and delete the old."""
    # Fields left out are None: the service keeps what is stored for them.
    updated = await service.update(actor, client_id, **body.model_dump(), caller=caller)
    return ClientRead.model_validate(updated)


@router.delete("/clients/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_client(
    client_id: ClientIdPath,
    actor: ClientsWriter,
    service: ClientAdminServiceDep,
    caller: CallerDep,
) -> None:
    await service.delete(actor, client_id, caller=caller)
