"""Who may call what: the access rule of every route the gateway serves, as one table.

`ROUTES` holds one entry per (method, path template) of the app, and
`test_every_route_has_an_entry` compares it with the routes the app really serves: a new
route without an entry (or an entry for a route that went away) fails, naming it. Each entry
names the rule the route follows (auth/dependencies.py):

- `public`: no credentials needed;
- `any`: `CurrentPrincipal`, an API key or a login cookie;
- `key`: `ApiKeyPrincipal`, an API key only (a cookie, even an admin's, is a 401);
- `admin`: `AdminPrincipal`, an admin by key or by cookie (others: 403);
- `owner`: the caller's own chat session (someone else's id is a 404, never a 403);
- `grant`: an admin with a live break-glass grant on the patient (access/router.py).

`RULES` turns a rule into the answer of each actor; where an allowed caller cannot get a 2xx
cheaply (a model that is not in the registry, say), the entry says which answer shows that
the call got past the access check (`allowed=`). Then every (route, actor) cell is one test,
and every cookie write is tried once more without its X-CSRF-Token header.

Actors: `none` (no credentials), `guest` (guest cookie), `patient_a` (owns the session, the
message and the account used in paths), `patient_b` (another patient), `integrator` (API
key), `admin_key` (admin API key, no grant), `admin_cookie` (admin browser login, with a
grant on patient_a). Cookie actors send their CSRF token on writes, as the web UI does.

The gateway is this module's own (`create_app` under uvicorn, with the session's settings and
engine emulator) on a database of its own, so that what it creates (a consented, rated
conversation, say) never reaches other tests' assertions; with an in-memory Celery broker
(nothing is queued for other tests' workers); and with a client address of its own
(X-Forwarded-For from a trusted proxy), so the per-address guest limits count its guests only.
Actors and the objects in paths are made directly in the database (users, logins and keys as
auth/service.py makes them), so a broken route fails its own cells only. Calls that use
something up (logout, deleting the account, a session, a key, a grant, a file, cancelling a
job, a guest signing up) get a fresh object or actor of their own: every cell stands alone,
in any order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from services.core.db import utcnow
from services.eval import store as evals_service
from services.gateway.app import create_app
from services.gateway.auth import service as auth_service
from services.gateway.config import GatewaySettings
from services.gateway.db import make_engine, make_sessionmaker
from services.gateway.files import service as files_service
from services.gateway.finetune import service as finetune_service
from services.gateway.finetune.schemas import JobCreate
from services.gateway.webhooks import service as webhooks_service
from services.store import apikeys
from services.store.files.storage import FileStore, new_file_id
from services.store.tables.access import AccessGrant
from services.store.tables.auth import User
from services.store.tables.cases import Case, MessageReview
from services.store.tables.feedback import Feedback
from services.store.tables.sessions import ChatSession, Message
from tests.support.servers import serve, temporary_database

T = TypeVar("T")

Actor = Literal[
    "none", "guest", "patient_a", "patient_b", "integrator", "admin_key", "admin_cookie"
]
ACTORS: tuple[Actor, ...] = (
    "none",
    "guest",
    "patient_a",
    "patient_b",
    "integrator",
    "admin_key",
    "admin_cookie",
)
LOGGED_IN: frozenset[Actor] = frozenset(ACTORS[1:])

Rule = Literal["public", "any", "key", "admin", "owner", "grant", "clinician"]
OK: Literal["ok"] = "ok"  # any 2xx
Expect = int | Literal["ok"]

RULES: dict[Rule, dict[Actor, Expect]] = {
    "public": {a: OK for a in ACTORS},
    "any": {
        "none": 401,
        "guest": OK,
        "patient_a": OK,
        "patient_b": OK,
        "integrator": OK,
        "admin_key": OK,
        "admin_cookie": OK,
    },
    "key": {
        "none": 401,
        "guest": 401,
        "patient_a": 401,
        "patient_b": 401,
        "integrator": OK,
        "admin_key": OK,
        "admin_cookie": 401,
    },
    "admin": {
        "none": 401,
        "guest": 403,
        "patient_a": 403,
        "patient_b": 403,
        "integrator": 403,
        "admin_key": OK,
        "admin_cookie": OK,
    },
    "owner": {  # someone else's session is a 404, exactly like a missing one
        "none": 401,
        "guest": 404,
        "patient_a": OK,
        "patient_b": 404,
        "integrator": 404,
        "admin_key": 404,
        "admin_cookie": 404,
    },
    "clinician": {  # clinicians and admins (cases/dependencies.py); none of the actors is a
        # clinician: tests/gateway/cases holds the clinicians' own matrix
        "none": 401,
        "guest": 403,
        "patient_a": 403,
        "patient_b": 403,
        "integrator": 403,
        "admin_key": OK,
        "admin_cookie": OK,
    },
    "grant": {
        "none": 401,
        "guest": 403,
        "patient_a": 403,
        "patient_b": 403,
        "integrator": 403,
        "admin_key": 403,  # an admin, but without a grant on patient_a
        "admin_cookie": OK,  # holds a live grant on patient_a
    },
}

# What the app serves that is not in the table, and why.
SKIPPED_METHODS = frozenset({"HEAD", "OPTIONS"})  # Starlette adds HEAD to every GET
SKIPPED_PATHS = {
    "/openapi.json": "FastAPI's OpenAPI schema: public by design, no data behind it",
    "/docs": "Swagger UI page (public, static)",
    "/docs/oauth2-redirect": "Swagger UI's OAuth2 helper page (public, static)",
    "/redoc": "ReDoc page (public, static)",
}
SKIPPED_NAMES = {
    "webui": "the built web UI's static files (GET/HEAD only, never an /api or /v1 path)",
}

PASSWORD = "access-matrix-password-1"
QUESTION = "权限矩阵：腰酸怎么办"  # none of the words other tests look for in datasets
ANSWER = "建议多休息。"
JSONL_ROW = {
    "conversation": [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": ANSWER},
    ]
}
JSONL = json.dumps(JSONL_ROW, ensure_ascii=False).encode() + b"\n"


# --- The actors and objects --------------------------------------------------------------


@dataclass(frozen=True)
class Creds:
    """A caller's credentials: an API key, or a login cookie and its CSRF token."""

    user_id: str = ""
    key: str = ""
    cookie: str = ""
    csrf: str = ""


@dataclass(frozen=True)
class Owner:
    """patient_a: a patient with one session holding one answered question."""

    creds: Creds
    email: str
    session_id: str
    message_id: int  # the answer


class Store:
    """The module's database, one event loop and one engine for all the setup."""

    def __init__(self, url: str):
        self.runner = asyncio.Runner()
        self.engine = make_engine(url)
        self.sessionmaker = make_sessionmaker(self.engine)

    def run(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async def go() -> T:
            async with self.sessionmaker() as db:
                out = await work(db)
                await db.commit()
                return out

        return self.runner.run(go())

    def close(self) -> None:
        self.runner.run(self.engine.dispose())
        self.runner.close()


async def _user(
    db: AsyncSession,
    *,
    role: str = "patient",
    guest: bool = False,
    password: str | None = None,
) -> tuple[uuid.UUID, str]:
    email = None if guest else f"matrix-{uuid.uuid4().hex[:12]}@example.org"
    user = User(
        role=role,
        is_guest=guest,
        email=email,
        password_hash=auth_service.hash_password(password) if password else None,
    )
    db.add(user)
    await db.flush()
    return user.id, email or ""


async def _login(db: AsyncSession, user_id: uuid.UUID) -> Creds:
    token, csrf = await auth_service.start_login(db=db, user_id=user_id, ttl_s=3600)
    return Creds(user_id=str(user_id), cookie=token, csrf=csrf)


async def _key(db: AsyncSession, role: str) -> tuple[uuid.UUID, Creds]:
    row, key = await apikeys.create_api_key(db=db, name=f"matrix-{role}", role=role)
    return row.id, Creds(user_id=str(row.user_id), key=key)


async def _answered_session(db: AsyncSession, user_id: uuid.UUID) -> tuple[uuid.UUID, int]:
    session = ChatSession(user_id=user_id, title=QUESTION)
    db.add(session)
    await db.flush()
    db.add(Message(session_id=session.id, seq=1, role="user", content=QUESTION))
    answer = Message(
        session_id=session.id, seq=2, role="assistant", content=ANSWER, finish_reason="stop"
    )
    db.add(answer)
    await db.flush()
    return session.id, answer.id


@dataclass
class World:
    """The gateway under test, its actors, and the objects their paths name."""

    store: Store
    client: httpx.Client
    files: FileStore
    settings: GatewaySettings
    # A client address of this module's own (X-Forwarded-For from a trusted proxy): the
    # per-address guest limits count this module's guests only.
    ip: str = field(default_factory=lambda: f"2001:db8::{uuid.uuid4().hex[:4]}")
    actors: dict[Actor, Creds] = field(default_factory=dict)
    owner: Owner | None = None
    setup_admin: Creds = field(default_factory=Creds)
    file_id: str = ""
    job_id: str = ""
    run_id: str = ""
    case_id: str = ""
    case_answer_id: int = 0  # the model's answer in the case's session

    # Fresh actors and objects.

    def new_actor(self, actor: Actor) -> Creds:
        async def make(db: AsyncSession) -> Creds:
            if actor == "none":
                return Creds()
            if actor in ("integrator", "admin_key"):
                return (await _key(db, "integrator" if actor == "integrator" else "admin"))[1]
            role = "admin" if actor == "admin_cookie" else "patient"
            user_id, _ = await _user(db, role=role, guest=actor == "guest")
            return await _login(db, user_id)

        return self.store.run(make)

    def new_owner(self, *, password: str | None = None, consent: bool = False) -> Owner:
        async def make(db: AsyncSession) -> Owner:
            user_id, email = await _user(db, password=password)
            creds = await _login(db, user_id)
            session_id, answer_id = await _answered_session(db, user_id)
            if consent:  # consented, the answer rated helpful and reviewed: datasets can be made
                user = await db.get(User, user_id)
                assert user is not None
                user.training_consent_at = utcnow()
                db.add(Feedback(message_id=answer_id, user_id=user_id, helpful=True))
                db.add(MessageReview(message_id=answer_id, verdict="correct"))
            return Owner(creds, email, str(session_id), answer_id)

        return self.store.run(make)

    def new_key_id(self) -> str:
        async def make(db: AsyncSession) -> str:
            return str((await _key(db, "integrator"))[0])

        return self.store.run(make)

    def new_grant_id(self) -> str:
        """A live grant of the setup admin's on patient_b (never on patient_a: a grant there
        would change what the `grant` cells answer)."""

        async def make(db: AsyncSession) -> str:
            grant = AccessGrant(
                admin_id=uuid.UUID(self.setup_admin.user_id),
                patient_id=uuid.UUID(self.actors["patient_b"].user_id),
                reason="access matrix: a grant to revoke",
                expires_at=utcnow() + timedelta(hours=1),
            )
            db.add(grant)
            await db.flush()
            return str(grant.id)

        return self.store.run(make)

    def new_file_id(self) -> str:
        """A fine-tune file stored as an upload stores it (the store, then its row)."""
        file_id = new_file_id()
        pending = self.files.begin(file_id)
        pending.write(JSONL)
        pending.complete()

        async def make(db: AsyncSession) -> str:
            await files_service.add_file(
                db=db,
                file_id=file_id,
                owner_id=uuid.UUID(self.setup_admin.user_id),
                purpose="fine-tune",
                filename="matrix.jsonl",
                size=len(JSONL),
                sha256=hashlib.sha256(JSONL).hexdigest(),
                rows=1,
            )
            return file_id

        return self.store.run(make)

    def new_job_id(self) -> str:
        """A job row as POST /v1/fine_tuning/jobs creates it (validating_files); no worker
        ever takes it, and reads need nothing more."""

        async def make(db: AsyncSession) -> str:
            body = JobCreate(model="matrix-base", training_file=self.file_id)
            job = await finetune_service.create_job(
                db=db, body=body, created_by=uuid.UUID(self.setup_admin.user_id), seed=1
            )
            return job.id

        return self.store.run(make)

    def new_run_id(self) -> str:
        """An evaluation run as POST /api/admin/evals creates it (queued; never taken)."""

        async def make(db: AsyncSession) -> str:
            run = await evals_service.create_run(
                db=db,
                model=self.settings.served_model_name,
                dataset="cmb-clin",
                config={},
                created_by=uuid.UUID(self.setup_admin.user_id),
            )
            return run.id

        return self.store.run(make)

    def new_case_id(self) -> str:
        return self.new_case()[0]

    def new_case(self) -> tuple[str, int]:
        """An open case on a new answered session of patient_b's (patient_a's session must
        stay as other cells expect it), and the answer in it."""

        async def make(db: AsyncSession) -> tuple[str, int]:
            session_id, answer_id = await _answered_session(
                db, uuid.UUID(self.actors["patient_b"].user_id)
            )
            now = utcnow()
            case = Case(
                session_id=session_id,
                patient_id=uuid.UUID(self.actors["patient_b"].user_id),
                reason="admin",
                state="open",
                due_at=now + timedelta(hours=1),
            )
            db.add(case)
            await db.flush()
            return str(case.id), answer_id

        return self.store.run(make)

    def new_webhook_id(self) -> str:
        """An active webhook, as POST /api/admin/webhooks creates it (no worker ever sends
        to it: the module's broker is in memory)."""

        async def make(db: AsyncSession) -> str:
            webhook = await webhooks_service.create_webhook(
                db=db,
                url="https://his.hospital.example/matrix",
                created_by=uuid.UUID(self.setup_admin.user_id),
            )
            return str(webhook.id)

        return self.store.run(make)

    @property
    def patient_a(self) -> Owner:
        assert self.owner is not None
        return self.owner

    def setup(self) -> None:
        self.setup_admin = self.new_actor("admin_key")
        self.owner = self.new_owner(password=PASSWORD, consent=True)
        self.actors = {a: self.new_actor(a) for a in ACTORS if a != "patient_a"}
        self.actors["patient_a"] = self.owner.creds

        async def grant(db: AsyncSession) -> None:
            db.add(
                AccessGrant(
                    admin_id=uuid.UUID(self.actors["admin_cookie"].user_id),
                    patient_id=uuid.UUID(self.patient_a.creds.user_id),
                    reason="access matrix: the admin_cookie actor reads patient_a",
                    expires_at=utcnow() + timedelta(hours=2),
                )
            )

        self.store.run(grant)
        self.file_id = self.new_file_id()
        self.job_id = self.new_job_id()
        self.run_id = self.new_run_id()
        self.case_id, self.case_answer_id = self.new_case()

    # Calls.

    def call(
        self,
        method: str,
        path: str,
        creds: Creds,
        *,
        csrf: bool = True,
        stream: bool = False,
        **kw: Any,
    ) -> httpx.Response:
        headers = {"X-Forwarded-For": self.ip}
        if creds.key:
            headers["Authorization"] = f"Bearer {creds.key}"
        if creds.cookie:
            headers["Cookie"] = f"{self.settings.cookie_name}={creds.cookie}"
        if csrf and creds.csrf and method != "GET":
            headers["X-CSRF-Token"] = creds.csrf
        try:
            if stream:
                with self.client.stream(method, path, headers=headers, **kw) as response:
                    return response
            return self.client.request(method, path, headers=headers, **kw)
        finally:
            # Answers that set cookies (login, signup, guest) must not leak into later calls.
            self.client.cookies.clear()


@dataclass(frozen=True)
class Cell:
    """What a cell's path and body are made of."""

    world: World
    owner: Owner  # patient_a: the module's, or a fresh one where the call uses it up


# --- The table ---------------------------------------------------------------------------


def _none(_: Cell) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Route:
    rule: Rule
    # Path parameters and request keyword arguments (json=, data=, files=, params=).
    params: Callable[[Cell], dict[str, Any]] = _none
    body: Callable[[Cell], dict[str, Any]] = _none
    # The answer of an allowed caller where it cannot cheaply be a 2xx: it shows the call
    # got past the access check (and the reason is given next to the entry).
    allowed: int | None = None
    # Actors whose credentials the call uses up: each such cell gets fresh ones.
    fresh: frozenset[Actor] = frozenset()
    # The call uses up patient_a's session: each cell gets a fresh patient_a and session.
    fresh_owner: bool = False
    # A stream that stays open (SSE): the status is read from the headers, then it is closed.
    stream: bool = False
    # The cookie actor for the CSRF test where the rule does not name one (public routes
    # that still look at a cookie).
    csrf_actor: Actor | None = None


def _session(c: Cell) -> dict[str, Any]:
    return {"session_id": c.owner.session_id}


def _patient(c: Cell) -> dict[str, Any]:
    return {"patient_id": c.owner.creds.user_id}


def _file(c: Cell) -> dict[str, Any]:
    return {"file_id": c.world.file_id}


def _job(c: Cell) -> dict[str, Any]:
    return {"job_id": c.world.job_id}


def _run(c: Cell) -> dict[str, Any]:
    return {"run_id": c.world.run_id}


def _case(c: Cell) -> dict[str, Any]:
    return {"case_id": c.world.case_id}


def _fresh_case(c: Cell) -> dict[str, Any]:
    return {"case_id": c.world.new_case_id()}


def _fresh_webhook(c: Cell) -> dict[str, Any]:
    return {"webhook_id": c.world.new_webhook_id()}


def _json(value: Any) -> Callable[[Cell], dict[str, Any]]:
    return lambda _: {"json": value}


def _signup(_: Cell) -> dict[str, Any]:
    email = f"matrix-{uuid.uuid4().hex[:12]}@example.org"
    return {"json": {"email": email, "password": PASSWORD}}


def _completion(c: Cell) -> dict[str, Any]:
    messages = [{"role": "user", "content": QUESTION}]
    return {
        "json": {"model": c.world.settings.served_model_name, "messages": messages, "max_tokens": 4}
    }


EVERYONE_FRESH: frozenset[Actor] = LOGGED_IN

ROUTES: dict[tuple[str, str], Route] = {
    # Accounts (auth/router.py).
    ("POST", "/api/auth/guest"): Route("public"),
    # A guest's cookie (with its CSRF token) turns the guest into the account: fresh guest.
    ("POST", "/api/auth/signup"): Route(
        "public", body=_signup, fresh=frozenset({"guest"}), csrf_actor="guest"
    ),
    ("POST", "/api/auth/login"): Route(
        "public", body=lambda c: {"json": {"email": c.owner.email, "password": PASSWORD}}
    ),
    ("POST", "/api/auth/logout"): Route("any", fresh=EVERYONE_FRESH),
    ("GET", "/api/auth/me"): Route("any"),
    ("GET", "/api/auth/me/export"): Route("any"),
    ("DELETE", "/api/auth/me"): Route("any", fresh=EVERYONE_FRESH),
    ("PUT", "/api/auth/me/consent"): Route("any", body=_json({"consent": True})),
    # Users and keys (auth/router.py, admin_router).
    ("GET", "/api/admin/users"): Route("admin"),
    ("POST", "/api/admin/clinicians"): Route(
        "admin",
        body=lambda _: {
            "json": {
                "email": f"matrix-dr-{uuid.uuid4().hex[:12]}@example.org",
                "password": PASSWORD,
                "display_name": "矩阵医生",
            }
        },
    ),
    # patient_b stays a patient: the call changes nothing, whoever makes it.
    ("PATCH", "/api/admin/users/{user_id}"): Route(
        "admin",
        params=lambda c: {"user_id": c.world.actors["patient_b"].user_id},
        body=_json({"role": "patient"}),
    ),
    ("GET", "/api/admin/keys"): Route("admin"),
    ("POST", "/api/admin/keys"): Route(
        "admin", body=_json({"name": "matrix", "role": "integrator"})
    ),
    ("DELETE", "/api/admin/keys/{key_id}"): Route(
        "admin", params=lambda c: {"key_id": c.world.new_key_id()}
    ),
    # Break-glass grants and the reads they open (access/router.py). New grants are on
    # patient_b, so admin_key never gets one on patient_a.
    ("POST", "/api/admin/grants"): Route(
        "admin",
        body=lambda c: {
            "json": {
                "patient_id": c.world.actors["patient_b"].user_id,
                "reason": "access matrix: who may open a grant",
                "minutes": 5,
            }
        },
    ),
    ("GET", "/api/admin/grants"): Route("admin"),
    ("DELETE", "/api/admin/grants/{grant_id}"): Route(
        "admin", params=lambda c: {"grant_id": c.world.new_grant_id()}
    ),
    ("GET", "/api/admin/patients/{patient_id}/sessions"): Route("grant", params=_patient),
    ("GET", "/api/admin/patients/{patient_id}/sessions/{session_id}"): Route(
        "grant", params=lambda c: _patient(c) | _session(c)
    ),
    ("GET", "/api/admin/audit"): Route("admin"),
    # Legal holds (privacy/router.py): admins, with no grant (holding needs no read). A hold
    # would keep patient_a's session from the cells that delete it: a fresh session per cell.
    ("PUT", "/api/admin/sessions/{session_id}/legal-hold"): Route(
        "admin",
        params=_session,
        body=_json({"reason": "access matrix: who may hold a session"}),
        fresh_owner=True,
    ),
    ("DELETE", "/api/admin/sessions/{session_id}/legal-hold"): Route("admin", params=_session),
    # Feedback and datasets (feedback/router.py). patient_a has consented and rated the
    # answer helpful, so an admin gets a dataset (201).
    ("POST", "/api/sessions/{session_id}/messages/{message_id}/feedback"): Route(
        "owner",
        params=lambda c: _session(c) | {"message_id": c.owner.message_id},
        body=_json({"helpful": True}),
    ),
    ("POST", "/api/admin/datasets/from-feedback"): Route("admin", body=_json({})),
    # Sessions (sessions/router.py) and chat (chat/router.py).
    ("POST", "/api/sessions"): Route("any", body=_json({})),
    ("GET", "/api/sessions"): Route("any"),
    ("GET", "/api/sessions/{session_id}"): Route("owner", params=_session),
    ("PATCH", "/api/sessions/{session_id}"): Route(
        "owner", params=_session, body=_json({"title": "renamed by the access matrix"})
    ),
    ("DELETE", "/api/sessions/{session_id}"): Route("owner", params=_session, fresh_owner=True),
    ("GET", "/api/sessions/{session_id}/export"): Route("owner", params=_session),
    # A new turn, or a regenerated answer (which replaces the answer other cells name).
    ("POST", "/api/sessions/{session_id}/messages"): Route(
        "owner",
        params=_session,
        body=_json({"content": QUESTION, "stream": False, "max_new_tokens": 4}),
        fresh_owner=True,
    ),
    ("POST", "/api/sessions/{session_id}/regenerate"): Route(
        "owner",
        params=_session,
        body=_json({"stream": False, "max_new_tokens": 4}),
        fresh_owner=True,
    ),
    ("POST", "/api/sessions/{session_id}/stop"): Route("owner", params=_session),
    # The patient's side of a hand-off (cases/patient_router.py). Asking opens a case on
    # patient_a's session; ending closes it: both leave the session usable by other cells.
    ("POST", "/api/sessions/{session_id}/handoff"): Route("owner", params=_session),
    ("GET", "/api/sessions/{session_id}/handoff"): Route("owner", params=_session),
    ("DELETE", "/api/sessions/{session_id}/handoff"): Route("owner", params=_session),
    ("GET", "/api/sessions/{session_id}/events"): Route("owner", params=_session, stream=True),
    # Cases (cases/router.py): clinicians and admins. Actions on a case that only its
    # claiming clinician may take are a 409 case_not_claimed for an admin who did not claim
    # it: past the access check. Claiming and closing use a case up: a fresh one per cell.
    ("GET", "/api/cases"): Route("clinician"),
    ("POST", "/api/cases"): Route(
        "admin", body=lambda c: {"json": {"session_id": c.owner.session_id}}
    ),
    ("GET", "/api/cases/{case_id}"): Route("clinician", params=_case),
    ("POST", "/api/cases/{case_id}/claim"): Route(
        "clinician", params=_fresh_case, body=_json({"pause_model": False})
    ),
    ("POST", "/api/cases/{case_id}/pause"): Route(
        "clinician", params=_case, body=_json({"paused": True}), allowed=409
    ),
    ("POST", "/api/cases/{case_id}/messages"): Route(
        "clinician", params=_case, body=_json({"content": "matrix"}), allowed=409
    ),
    ("POST", "/api/cases/{case_id}/close"): Route("clinician", params=_fresh_case),
    ("POST", "/api/cases/{case_id}/summary"): Route("clinician", params=_case),
    # Reviews of AI answers (reviews/router.py): the clinician holding the case, or an admin
    # (who needs no claim). Reviewing again replaces the verdict: the module's case serves.
    ("POST", "/api/cases/{case_id}/reviews"): Route(
        "clinician",
        params=_case,
        body=lambda c: {"json": {"message_id": c.world.case_answer_id, "verdict": "correct"}},
    ),
    ("GET", "/api/admin/reviews/stats"): Route("admin"),
    # patient_a's reviewed answer (consented) makes a dataset: 201.
    ("POST", "/api/admin/datasets/from-reviews"): Route("admin", body=_json({})),
    # Webhooks for hospital systems (webhooks/router.py): admins only. Disabling uses a
    # webhook up: a fresh one per cell (and per deliveries read, for symmetry).
    ("POST", "/api/admin/webhooks"): Route(
        "admin", body=_json({"url": "https://his.hospital.example/matrix"})
    ),
    ("GET", "/api/admin/webhooks"): Route("admin"),
    ("DELETE", "/api/admin/webhooks/{webhook_id}"): Route("admin", params=_fresh_webhook),
    ("GET", "/api/admin/webhooks/{webhook_id}/deliveries"): Route("admin", params=_fresh_webhook),
    # The OpenAI-compatible API (openai_api/router.py): models for any caller (the console
    # lists them with its cookie), completions for API keys only.
    ("GET", "/v1/models"): Route("any"),
    ("POST", "/v1/chat/completions"): Route("key", body=_completion),
    # Files (files/router.py): admins, by key or by the console's cookie.
    ("POST", "/v1/files"): Route(
        "admin",
        body=lambda _: {
            "data": {"purpose": "fine-tune"},
            "files": {"file": ("matrix.jsonl", JSONL, "application/jsonl")},
        },
    ),
    ("GET", "/v1/files"): Route("admin"),
    ("GET", "/v1/files/{file_id}"): Route("admin", params=_file),
    ("DELETE", "/v1/files/{file_id}"): Route(
        "admin", params=lambda c: {"file_id": c.world.new_file_id()}
    ),
    ("GET", "/v1/files/{file_id}/content"): Route("admin", params=_file),
    # Fine-tuning (finetune/router.py). Creating a job needs a base model in the registry:
    # an unknown one is a 400 model_not_found, answered only past the admin check.
    ("POST", "/v1/fine_tuning/jobs"): Route(
        "admin",
        body=lambda c: {"json": {"model": "no-such-base-model", "training_file": c.world.file_id}},
        allowed=400,
    ),
    ("GET", "/v1/fine_tuning/jobs"): Route("admin"),
    ("GET", "/v1/fine_tuning/jobs/{job_id}"): Route("admin", params=_job),
    ("POST", "/v1/fine_tuning/jobs/{job_id}/cancel"): Route(
        "admin", params=lambda c: {"job_id": c.world.new_job_id()}
    ),
    ("GET", "/v1/fine_tuning/jobs/{job_id}/events"): Route("admin", params=_job),
    ("GET", "/v1/fine_tuning/jobs/{job_id}/checkpoints"): Route("admin", params=_job),
    # Evaluation runs (evals/router.py). A valid run would be queued for a worker: an empty
    # body is refused (422) past the admin check instead. The module's run is queued, so
    # resuming it is a 409 run_active, again past the admin check.
    ("POST", "/api/admin/evals"): Route("admin", body=_json({}), allowed=422),
    ("GET", "/api/admin/evals"): Route("admin"),
    ("GET", "/api/admin/evals/{run_id}"): Route("admin", params=_run),
    ("GET", "/api/admin/evals/{run_id}/cases"): Route("admin", params=_run),
    ("GET", "/api/admin/evals/{run_id}/results"): Route("admin", params=_run),
    ("POST", "/api/admin/evals/{run_id}/resume"): Route("admin", params=_run, allowed=409),
    # The served model (serving/router.py). Choosing changes what every patient talks to:
    # a model that is not in the registry is a 400 model_not_found past the admin check.
    ("GET", "/api/admin/serving"): Route("admin"),
    ("PUT", "/api/admin/serving"): Route(
        "admin", body=_json({"model": "no-such-model"}), allowed=400
    ),
    # Operations (app.py): probes and metrics, for the orchestrator and Prometheus.
    ("GET", "/metrics"): Route("public"),
    ("GET", "/healthz"): Route("public"),
    ("GET", "/readyz"): Route("public"),
}


def expected(route: Route, actor: Actor) -> Expect:
    want = RULES[route.rule][actor]
    return route.allowed if want == OK and route.allowed is not None else want


def matches(status: int, want: Expect) -> bool:
    return 200 <= status < 300 if want == OK else status == want


def csrf_actor(route: Route) -> Actor | None:
    """The cookie that would be let through with its CSRF token: only the header is
    missing."""
    if route.csrf_actor is not None:
        return route.csrf_actor
    by_rule: dict[Rule, Actor] = {
        "any": "patient_a",
        "owner": "patient_a",
        "admin": "admin_cookie",
        "grant": "admin_cookie",
        "clinician": "admin_cookie",
        "key": "admin_cookie",
    }
    return by_rule.get(route.rule)


def served_routes(app: FastAPI) -> tuple[set[tuple[str, str]], list[str]]:
    """(method, path) of every API route, and what else the app serves that is not explained
    by SKIPPED_PATHS / SKIPPED_NAMES. Included routers are walked through
    `iter_route_contexts`: FastAPI >= 0.165 keeps them as one entry in `app.routes`."""
    routes: set[tuple[str, str]] = set()
    unexplained: list[str] = []
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute):
            assert ctx.path is not None
            routes |= {(m, ctx.path) for m in (ctx.methods or set()) - SKIPPED_METHODS}
        elif ctx.path not in SKIPPED_PATHS and ctx.name not in SKIPPED_NAMES:
            unexplained.append(f"{type(ctx.original_route).__name__} {ctx.path!r} ({ctx.name})")
    return routes, unexplained


def run_cell(
    world: World, method: str, template: str, actor: Actor, *, csrf: bool = True
) -> httpx.Response:
    route = ROUTES[(method, template)]
    owner = world.new_owner() if route.fresh_owner else world.patient_a
    if actor in route.fresh:
        creds = world.new_actor(actor)
    elif actor == "patient_a":
        creds = owner.creds
    else:
        creds = world.actors[actor]
    cell = Cell(world, owner)
    path = template.format(**route.params(cell))
    return world.call(method, path, creds, csrf=csrf, stream=route.stream, **route.body(cell))


# --- Fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix_settings(
    gateway_settings: GatewaySettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewaySettings]:
    with temporary_database() as url:
        yield gateway_settings.model_copy(
            update={
                "database_url": url,
                "broker_url": "memory://",
                "files_dir": tmp_path_factory.mktemp("matrix-files"),
                "trusted_proxies": "127.0.0.1",
            }
        )


@pytest.fixture(scope="module")
def matrix_app(matrix_settings: GatewaySettings) -> FastAPI:
    return create_app(matrix_settings)


@pytest.fixture(scope="module")
def world(matrix_app: FastAPI, matrix_settings: GatewaySettings) -> Iterator[World]:
    store = Store(matrix_settings.database_url)
    try:
        with serve(matrix_app) as url, httpx.Client(base_url=url, timeout=60) as client:
            w = World(store, client, matrix_app.state.files, matrix_settings)
            w.setup()
            yield w
    finally:
        store.close()


# --- Tests -------------------------------------------------------------------------------


def test_every_route_has_an_entry(matrix_app: FastAPI) -> None:
    served, unexplained = served_routes(matrix_app)
    table = set(ROUTES)
    missing = sorted(served - table)
    extra = sorted(table - served)
    assert not unexplained, (
        "the app serves routes that are neither API routes nor explained skips; give them an"
        f" entry in ROUTES or a reason in SKIPPED_PATHS/SKIPPED_NAMES: {unexplained}"
    )
    assert not missing and not extra, (
        f"routes without an entry in ROUTES (say who may call them): {missing}; entries for"
        f" routes the app does not serve: {extra}"
    )


def _cell_id(method: str, path: str, actor: str) -> str:
    return f"{method} {path}-{actor}"


CELLS = [(m, p, a) for (m, p) in ROUTES for a in ACTORS]


@pytest.mark.parametrize(
    ("method", "path", "actor"), CELLS, ids=[_cell_id(*cell) for cell in CELLS]
)
def test_access(world: World, method: str, path: str, actor: Actor) -> None:
    route = ROUTES[(method, path)]
    want = expected(route, actor)
    r = run_cell(world, method, path, actor)
    assert matches(r.status_code, want), (
        f"{method} {path} as {actor} (rule {route.rule!r}): expected"
        f" {'2xx' if want == OK else want}, got {r.status_code}: {r.text[:500]}"
    )


CSRF_CELLS = [
    (m, p, actor)
    for (m, p), route in ROUTES.items()
    if m != "GET" and (actor := csrf_actor(route)) is not None
]


@pytest.mark.parametrize(
    ("method", "path", "actor"), CSRF_CELLS, ids=[_cell_id(*cell) for cell in CSRF_CELLS]
)
def test_cookie_writes_need_the_csrf_header(
    world: World, method: str, path: str, actor: Actor
) -> None:
    """The same cookie that is let through with its X-CSRF-Token, without the header: 403
    (on the key-only API a cookie is refused anyway: 401 or 403)."""
    route = ROUTES[(method, path)]
    refused = {401, 403} if route.rule == "key" else {403}
    r = run_cell(world, method, path, actor, csrf=False)
    assert r.status_code in refused, (
        f"{method} {path} as {actor} without X-CSRF-Token: expected"
        f" {' or '.join(map(str, sorted(refused)))}, got {r.status_code}: {r.text[:500]}"
    )


def test_the_table_states_every_rule_for_every_actor() -> None:
    """Each rule answers every actor; no entry's path names a parameter it does not fill."""
    for rule, answers in RULES.items():
        assert set(answers) == set(ACTORS), rule
    for (method, template), route in ROUTES.items():
        assert route.fresh <= LOGGED_IN, (method, template)
        names = {part.split("}")[0] for part in template.split("{")[1:]}
        assert not names or route.params is not _none, (method, template)
