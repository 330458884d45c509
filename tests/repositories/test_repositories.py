"""BaseRepository and the entity repositories, on PostgreSQL and SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from app.errors import InvalidCursor
from app.models import ActionPurpose, Role, User
from app.repositories import (
    ActionTokenRepository,
    OAuthAccountRepository,
    RefreshTokenRepository,
    RoleRepository,
    SignInSessionRepository,
    UniqueViolation,
    UserRepository,
)


async def make_users(users: UserRepository, count: int, prefix: str = "user") -> list[User]:
    return [await users.create(email=f"{prefix}{i:03}@example.com") for i in range(count)]


async def test_create_returns_row_with_defaults_loaded(session: AsyncSession) -> None:
    user = await UserRepository(session).create(email="ada@example.com", full_name="Ada")

    assert isinstance(user.id, uuid.UUID)
    assert user.is_active is True
    assert user.is_verified is False
    assert user.token_version == 0
    assert user.created_at.tzinfo is not None


async def test_get_by_id_and_missing_id(session: AsyncSession) -> None:
    users = UserRepository(session)
    user = await users.create(email="ada@example.com")

    assert await users.get_by_id(user.id) is user
    assert await users.get_by_id(uuid.uuid4()) is None


async def test_get_by_email_ignores_case(session: AsyncSession) -> None:
    users = UserRepository(session)
    user = await users.create(email="ada@example.com")

    assert await users.get_by_email("  ADA@Example.COM ") == user
    assert await users.get_by_email("bob@example.com") is None


async def test_get_by_identifier_accepts_email_or_username(session: AsyncSession) -> None:
    users = UserRepository(session)
    user = await users.create(email="ada@example.com", username="ada")

    assert await users.get_by_identifier("Ada@example.com") == user
    assert await users.get_by_identifier("ADA") == user
    assert await users.get_by_identifier("nobody") is None


async def test_duplicate_email_is_refused_by_the_database(session: AsyncSession) -> None:
    users = UserRepository(session)
    await users.create(email="ada@example.com")

    with pytest.raises(UniqueViolation) as refused:
        await users.create(email="ada@example.com")

    assert refused.value.field == "email"


async def test_duplicate_username_on_update_names_the_field(session: AsyncSession) -> None:
    users = UserRepository(session)
    await users.create(email="ada@example.com", username="ada")
    bob = await users.create(email="bob@example.com")

    with pytest.raises(UniqueViolation) as refused:
        await users.update(bob, username="ada")

    assert refused.value.field == "username"


async def test_mixed_case_email_written_around_the_service_is_refused(
    session: AsyncSession,
) -> None:
    with pytest.raises(IntegrityError):
        await UserRepository(session).create(email="Ada@Example.com")


async def test_filters_count_and_exists(session: AsyncSession) -> None:
    users = UserRepository(session)
    await make_users(users, 3)
    await users.create(email="off@example.com", is_active=False)

    assert await users.count() == 4
    assert await users.count(is_active=False) == 1
    assert [u.email for u in await users.list_by(is_active=False)] == ["off@example.com"]
    assert await users.exists(email="off@example.com")
    assert not await users.exists(email="none@example.com")
    assert (await users.get_one_by(User.email.like("user00%"), is_active=True)) is not None


async def test_update_sets_fields_and_refreshes_updated_at(session: AsyncSession) -> None:
    users = UserRepository(session)
    user = await users.create(email="ada@example.com")
    before = user.updated_at

    updated = await users.update(user, full_name="Ada Lovelace")

    assert updated.full_name == "Ada Lovelace"
    assert updated.updated_at >= before


async def test_update_rejects_unknown_attribute(session: AsyncSession) -> None:
    users = UserRepository(session)
    user = await users.create(email="ada@example.com")

    with pytest.raises(AttributeError):
        await users.update(user, not_a_column=1)


async def test_delete_reports_whether_a_row_matched(session: AsyncSession) -> None:
    users = UserRepository(session)
    user = await users.create(email="ada@example.com")

    assert await users.delete(user.id) is True
    assert await users.delete(user.id) is False
    assert await users.get_by_id(user.id) is None


async def test_update_many_changes_only_the_given_ids_in_one_statement(
    session: AsyncSession,
) -> None:
    users = UserRepository(session)
    created = await make_users(users, 5)
    target = [u.id for u in created[:3]]

    changed = await users.update_many([*target, uuid.uuid4()], is_active=False)

    assert sorted(changed) == sorted(target)
    inactive = await users.list_by(is_active=False)
    assert sorted(u.id for u in inactive) == sorted(target)


async def test_keyset_pages_cover_every_row_once_in_id_order(session: AsyncSession) -> None:
    users = UserRepository(session)
    created = await make_users(users, 7)

    seen: list[uuid.UUID] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await users.list_page(limit=3, cursor=cursor)
        seen.extend(u.id for u in page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    assert pages == 3
    assert seen == sorted(u.id for u in created)


async def test_keyset_page_is_stable_while_rows_are_inserted(session: AsyncSession) -> None:
    users = UserRepository(session)
    created = await make_users(users, 4)
    first = await users.list_page(limit=2)

    late = await users.create(email="late@example.com")
    second = await users.list_page(limit=2, cursor=first.next_cursor)
    third = await users.list_page(limit=2, cursor=second.next_cursor)

    assert [u.id for u in second.items] == [u.id for u in created[2:4]]
    assert [u.id for u in third.items] == [late.id]
    assert third.next_cursor is None


async def test_keyset_page_with_filter(session: AsyncSession) -> None:
    users = UserRepository(session)
    await make_users(users, 3, prefix="on")
    off = [await users.create(email=f"off{i}@example.com", is_active=False) for i in range(3)]

    page = await users.list_page(limit=2, is_active=False)
    rest = await users.list_page(limit=2, cursor=page.next_cursor, is_active=False)

    assert [u.id for u in page.items + rest.items] == [u.id for u in off]


async def test_garbage_cursor_is_refused(session: AsyncSession) -> None:
    with pytest.raises(InvalidCursor):
        await UserRepository(session).list_page(limit=2, cursor="not a cursor!")


async def test_repositories_never_commit(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with session_factory() as session:
        users = UserRepository(session)
        user = await users.create(email="ada@example.com")
        await users.update(user, full_name="Ada")
        await RoleRepository(session).create(name="auditor")
        await session.rollback()

    async with session_factory() as other:
        assert await UserRepository(other).count() == 0
        assert await RoleRepository(other).get_by_name("auditor") is None


async def test_deleting_a_user_cascades_to_sessions_tokens_and_links(
    session: AsyncSession,
) -> None:
    users = UserRepository(session)
    user = await users.create(email="ada@example.com")
    sessions = SignInSessionRepository(session)
    family = await sessions.create(
        user_id=user.id, expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    refresh_tokens = RefreshTokenRepository(session)
    await refresh_tokens.create(session_id=family.id, token_hash="a" * 64)
    await OAuthAccountRepository(session).add_account(user.id, "github", "42")
    await ActionTokenRepository(session).create(
        user_id=user.id,
        purpose=ActionPurpose.verify_email,
        token_hash="b" * 64,
        email=user.email,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )

    assert await users.delete(user.id)

    assert await sessions.count() == 0
    assert await refresh_tokens.count() == 0
    assert await OAuthAccountRepository(session).count() == 0
    assert await ActionTokenRepository(session).count() == 0


async def test_oauth_account_lookup_and_unique_identity(session: AsyncSession) -> None:
    user = await UserRepository(session).create(email="ada@example.com")
    accounts = OAuthAccountRepository(session)
    account = await accounts.add_account(user.id, "github", "42", account_email="ada@gh.example")

    assert await accounts.get_user("github", "42") == user
    assert await accounts.get_user("github", "43") is None
    updated = await accounts.update_account(account, account_email="new@gh.example")
    assert updated.account_email == "new@gh.example"
    with pytest.raises(IntegrityError):
        await accounts.add_account(user.id, "github", "42")


async def test_role_permissions_and_user_roles_round_trip(session: AsyncSession) -> None:
    from app.repositories import PermissionRepository

    permissions = PermissionRepository(session)
    read = await permissions.create(codename="reports:read")
    roles = RoleRepository(session)
    role = await roles.create(name="support", permissions=[read])
    user = await UserRepository(session).create(email="ada@example.com", roles=[role])

    assert [r.name for r in user.roles] == ["support"]
    loaded = await session.execute(
        select(Role).where(Role.id == role.id).options(selectinload(Role.permissions))
    )
    assert [p.codename for p in loaded.scalar_one().permissions] == ["reports:read"]
    assert [r.name for r in await roles.list_by_names(["support", "nope"])] == ["support"]
    assert (await permissions.get_by_codename("reports:read")) == read
