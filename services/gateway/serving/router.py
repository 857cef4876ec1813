"""The admin's choice of the model that serves patients (admins only, audited)."""

from __future__ import annotations

from fastapi import APIRouter

from services.gateway.audit.dependencies import Audit
from services.gateway.auth.dependencies import AdminPrincipal
from services.gateway.chat.runtime import ChatRuntime
from services.gateway.db import Db
from services.gateway.deps import Runtime
from services.store.tables.serving import ServingChoice

from . import service
from .compatibility import default_served, find_model, make_servable
from .schemas import ServingChange, ServingOut

router = APIRouter(prefix="/api/admin/serving", tags=["admin"])


async def _out(db: Db, runtime: ChatRuntime) -> ServingOut:
    row = await db.get(ServingChoice, 1)
    default = runtime.settings.served_model_name
    if row is None:
        return ServingOut(model=default, default_model=default)
    return ServingOut(
        model=row.model, default_model=default, chosen_by=row.chosen_by, chosen_at=row.chosen_at
    )


@router.get("", response_model=ServingOut)
async def get_serving(runtime: Runtime, db: Db, _: AdminPrincipal) -> ServingOut:
    return await _out(db, runtime)


@router.put("", response_model=ServingOut)
async def choose_serving(
    body: ServingChange, runtime: Runtime, db: Db, trail: Audit, principal: AdminPrincipal
) -> ServingOut:
    """Serve patients with another model (a published fine-tune, or back to the engine's
    default). The engine is asked first, with the tokenization canary: a model it does not
    answer for is refused (409) with what to change; nothing changes then."""
    settings = runtime.settings
    if body.model == settings.served_model_name:
        served = default_served(settings)
    else:
        model = find_model(settings, body.model)
        served = await make_servable(settings, runtime.engine, runtime.format, model)
    before = await runtime.serving.current()
    await service.save_choice(db, served, principal.user_id)
    trail(
        "admin.model_switch",
        target_type="model",
        target_id=served.name,
        details={"from": before.name, "to": served.name},
        by=principal,
    )
    await db.commit()
    runtime.serving.remember(served)  # this process at once; the others within refresh_s
    return await _out(db, runtime)
