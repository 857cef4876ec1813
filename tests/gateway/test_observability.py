"""Request ids, Prometheus metrics, and logs that never carry what patients wrote."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import httpx
import orjson
import pytest

from services.gateway.observability import JsonFormatter
from tests.support.platform import Patient


def test_request_id_is_echoed_or_made(gateway_url: str) -> None:
    given = httpx.get(f"{gateway_url}/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = httpx.get(f"{gateway_url}/healthz")
    assert len(made.headers["x-request-id"]) == 32


def test_metrics_count_chat(gateway_url: str, new_guest: Callable[[], Patient]) -> None:
    p = new_guest()
    sid = p.post("/api/sessions", json={}).json()["id"]
    assert (
        p.post(
            f"/api/sessions/{sid}/messages", json={"content": "牙疼", "stream": False}
        ).status_code
        == 200
    )
    text = httpx.get(f"{gateway_url}/metrics").text
    assert 'medchat_time_to_first_token_seconds_count{api="chat"}' in text
    assert 'medchat_completion_tokens_total{api="chat"}' in text
    assert "medchat_active_streams 0.0" in text
    # Route templates, never ids, label the latency series.
    assert 'route="/api/sessions/{session_id}/messages"' in text
    assert sid not in text


def test_logs_hold_no_message_text(
    new_guest: Callable[[], Patient], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "我有艾滋病但不敢告诉家人"
    p = new_guest()
    sid = p.post("/api/sessions", json={}).json()["id"]
    with caplog.at_level(logging.DEBUG):
        p.post(f"/api/sessions/{sid}/messages", json={"content": secret, "stream": False})
        p.post(f"/api/sessions/{sid}/messages", json={"content": secret + "x" * 30_000})
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    assert any('"route":"/api/sessions/{session_id}/messages"' in line for line in lines)
    assert not any(secret in line for line in lines)


def test_log_lines_are_redacted() -> None:
    """PHI that reaches a log call anyway (a message, an extra, a traceback) is redacted."""
    logger = logging.getLogger("medchat.test")
    try:
        raise ValueError("lookup failed for 13812345678")
    except ValueError:
        record = logger.makeRecord(
            "medchat.test",
            logging.ERROR,
            __file__,
            1,
            "patient %s called",
            ("我叫王小明",),
            exc_info=sys.exc_info(),
            extra={"contact": "jsmith@example.org"},
        )
    line = JsonFormatter().format(record)
    assert "王小明" not in line and "13812345678" not in line and "jsmith@" not in line
    entry = orjson.loads(line)
    assert entry["msg"] == "patient 我叫[NAME] called" and entry["contact"] == "[EMAIL]"
    assert "[PHONE]" in entry["exc"]
