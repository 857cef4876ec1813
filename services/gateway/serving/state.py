"""Which model answers patients, per process: the admin's choice read from Postgres at most
every `serving_refresh_s`, and the models API calls name (checked once, then remembered)."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.core.chatformat import ChatFormat
from services.gateway.config import GatewaySettings
from services.gateway.engine import EngineClient
from services.store.tables.serving import ServingChoice

from .compatibility import Served, make_servable, registered

log = logging.getLogger(__name__)

CHECKED_S = 60.0  # how long a model an API call named is taken as servable without asking
# A name that is no model is looked up again after this long: short, so a fine-tune published
# meanwhile is found soon; long enough that a client's "gpt-4" costs one registry scan per
# few seconds, not one per request.
UNREGISTERED_S = 5.0
MAX_UNREGISTERED = 1024  # distinct unknown names remembered at once


class ServingState:
    """The current choice, per process: one small read per `refresh_s`, not per request."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        default: Served,
        refresh_s: float,
    ):
        self._sessionmaker = sessionmaker
        self._default = default
        self._refresh_s = refresh_s
        self._value: Served | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._checked: dict[str, tuple[Served, float]] = {}  # models API calls asked for
        self._unregistered: dict[str, float] = {}  # names that are no model, until when

    async def current(self) -> Served:
        if self._value is not None and time.monotonic() < self._expires:
            return self._value
        async with self._lock:
            if self._value is not None and time.monotonic() < self._expires:
                return self._value
            try:
                async with self._sessionmaker() as db:
                    row = await db.get(ServingChoice, 1)
            except (SQLAlchemyError, OSError) as exc:
                # Chat cannot store anything without Postgres either; keep what was known.
                log.warning("could not read the serving choice: %s", type(exc).__name__)
                return self._value or self._default
            self.remember(Served(row.model, row.engine_ref) if row else self._default)
            assert self._value is not None
            return self._value

    def remember(self, served: Served) -> None:
        self._value, self._expires = served, time.monotonic() + self._refresh_s

    async def for_request(
        self,
        requested: str,
        settings: GatewaySettings,
        engine: EngineClient,
        chat_format: ChatFormat,
    ) -> Served:
        """The model an API call names, when it names another listed model than the one
        serving patients (a fine-tune under evaluation): checked with the engine as a switch
        is, then remembered for a minute. Any other name gets the serving model, which the
        reply names."""
        current = await self.current()
        if requested == current.name:
            return current
        if requested == self._default.name:
            return self._default
        checked = self._checked.get(requested)
        if checked is not None and time.monotonic() < checked[1]:
            return checked[0]
        if time.monotonic() < self._unregistered.get(requested, 0.0):
            return current
        model = registered(settings, requested)
        if model is None:
            self._unregistered[requested] = time.monotonic() + UNREGISTERED_S
            if len(self._unregistered) > MAX_UNREGISTERED:
                self._unregistered.clear()
            return current
        served = await make_servable(settings, engine, chat_format, model)
        self._checked[requested] = (served, time.monotonic() + CHECKED_S)
        return served
