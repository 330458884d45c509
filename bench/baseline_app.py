"""The yardstick for `GET /users/me`: a bare FastAPI endpoint doing one primary-key SELECT.

Same database, same engine and pool settings (`app.db.create_engine` with the same `AUTH_*`
settings), same uvicorn flags. No token, no joins: `session.get(User, id)` with the `roles`
relationship not loaded (its `selectin` loader would add a second query), returning the
public fields of a user as a plain dict.

Run: `uvicorn bench.baseline_app:create_app --factory`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import noload

from app.config import Settings
from app.db import create_engine, create_session_factory
from app.models import User


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, as the service's own dependency opens it."""
    session_factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with session_factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def create_app() -> FastAPI:
    settings = Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.session_factory = create_session_factory(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title="authsvc-bench-baseline", lifespan=lifespan)

    @app.get("/health/ready")
    async def ready(session: SessionDep) -> dict[str, str]:
        await session.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/users/{user_id}")
    async def read_user(user_id: uuid.UUID, session: SessionDep) -> dict[str, Any]:
        user = await session.get(User, user_id, options=[noload(User.roles)])
        if user is None:
            raise HTTPException(status_code=404)
        return {
            "id": user.id,
            "email": user.email,
            "username": user.username,
            "full_name": user.full_name,
            "is_active": user.is_active,
            "is_verified": user.is_verified,
            "is_superuser": user.is_superuser,
            "roles": [],
            "created_at": user.created_at,
        }

    return app
