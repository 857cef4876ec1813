"""Admins manage accounts: users and their roles, API keys (created, listed, revoked; a
revocation reaches every gateway replica at once)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from services.gateway.audit.dependencies import Audit
from services.gateway.auth import revocations
from services.gateway.auth.dependencies import AdminPrincipal
from services.gateway.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ClinicianCreate,
    RoleChange,
    UserOut,
)
from services.gateway.auth.service import user_out
from services.gateway.db import Db
from services.gateway.deps import Keys, RedisClient
from services.gateway.errors import ApiError, NotFound
from services.store import apikeys

from . import service

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/users")
async def list_users(
    _: AdminPrincipal,
    db: Db,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # a bigint overflow was a 500
    include_guests: bool = False,
) -> list[UserOut]:
    users = await service.list_users(
        db=db, limit=limit, offset=offset, include_guests=include_guests
    )
    return [user_out(u) for u in users]


@router.post("/clinicians", status_code=201)
async def create_clinician(
    body: ClinicianCreate, principal: AdminPrincipal, trail: Audit, db: Db
) -> UserOut:
    """A clinician account: signs in like a patient, sees only the cases escalated to the
    clinicians (the queue) and the ones they claimed."""
    user = await service.create_clinician(db=db, body=body)
    trail("admin.clinician_create", target_type="user", target_id=user.id, by=principal)
    await db.commit()
    return user_out(user)


@router.patch("/users/{user_id}")
async def change_role(
    user_id: uuid.UUID, body: RoleChange, principal: AdminPrincipal, trail: Audit, db: Db
) -> UserOut:
    if user_id == principal.user_id:
        raise ApiError(409, "own_role", "admins cannot change their own role", "role")
    user, before = await service.change_role(
        db=db, user_id=user_id, role=body.role, display_name=body.display_name, title=body.title
    )
    trail(
        "admin.user_role",
        target_type="user",
        target_id=user.id,
        details={"from": before, "to": body.role},
        by=principal,
    )
    await db.commit()
    return user_out(user)


@router.get("/keys")
async def list_keys(_: AdminPrincipal, db: Db) -> list[ApiKeyOut]:
    return [
        ApiKeyOut.model_validate(r, from_attributes=True) for r in await service.list_keys(db=db)
    ]


@router.post("/keys", status_code=201)
async def create_key(
    body: ApiKeyCreate, principal: AdminPrincipal, trail: Audit, db: Db
) -> ApiKeyCreated:
    row, key = await apikeys.create_api_key(db=db, name=body.name, role=body.role)
    trail(
        "admin.key_create",
        target_type="api_key",
        target_id=row.id,
        details={"role": body.role, "name": body.name},
        by=principal,
    )
    await db.commit()
    return ApiKeyCreated(
        **ApiKeyOut.model_validate(row, from_attributes=True).model_dump(), key=key
    )


@router.delete("/keys/{key_id}", status_code=204)
async def revoke_key(
    key_id: uuid.UUID,
    principal: AdminPrincipal,
    db: Db,
    trail: Audit,
    keys: Keys,
    redis: RedisClient,
) -> None:
    if not await apikeys.revoke_api_key(db=db, key_id=key_id):
        raise NotFound("active API key")
    trail("admin.key_revoke", target_type="api_key", target_id=key_id, by=principal)
    await db.commit()
    keys.forget(key_id)
    await revocations.announce(redis, key_id)
