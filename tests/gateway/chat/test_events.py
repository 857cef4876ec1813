"""The streamed answer's events are what the OpenAPI says they are (`chat/events.py`): the
frontend's types are generated from those models, so a drift would reach patients."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import TypeAdapter

from services.gateway.chat.events import ChatStreamEvent
from services.gateway.chat.schemas import ChatAnswer
from services.gateway.error_schemas import ErrorBody
from tests.gateway.chat.test_chat import ask, sse_events
from tests.support.engine_emulator import EmulatorHandle
from tests.support.platform import Patient

EVENT = TypeAdapter(ChatStreamEvent)


def stream(p: Patient, sid: str, content: str) -> list[tuple[str, object]]:
    with p.stream_answer(sid, content) as r:
        assert r.status_code == 200
        events = list(sse_events(r))
    for name, data in events:
        EVENT.validate_python({"event": name, "data": data})
    return events


def test_events_of_an_answer_with_an_emergency_notice(
    new_guest: Callable[[], Patient], engine: EmulatorHandle
) -> None:
    p = new_guest()
    sid = p.post("/api/sessions", json={}).json()["id"]
    events = stream(p, sid, "胸口像压了块石头一样疼，还出冷汗")
    meta = EVENT.validate_python({"event": events[0][0], "data": events[0][1]})
    assert meta.event == "meta" and meta.data.emergency is not None
    assert meta.data.emergency.severity in ("urgent", "critical")
    assert events[-1][0] == "done"


def test_events_of_a_failure_mid_stream(
    new_guest: Callable[[], Patient], engine: EmulatorHandle
) -> None:
    p = new_guest()
    sid = p.post("/api/sessions", json={}).json()["id"]
    engine.control(mode="generation_error")
    events = stream(p, sid, "头晕")
    assert events[0][0] == "meta" and events[-1][0] == "error"


def test_json_answer_and_error_bodies_match_their_models(
    new_guest: Callable[[], Patient], engine: EmulatorHandle
) -> None:
    p = new_guest()
    sid = p.post("/api/sessions", json={}).json()["id"]
    answer = ask(p, sid, "胸口像压了块石头一样疼，还出冷汗")
    assert ChatAnswer.model_validate(answer.json()).emergency is not None
    engine.control(mode="overloaded")
    busy = ask(p, sid, "还在吗")
    assert busy.status_code == 503
    assert ErrorBody.model_validate(busy.json()).error.code == "engine_overloaded"
    assert p.post(f"/api/sessions/{sid}/stop").json() == {"stopping": True}
