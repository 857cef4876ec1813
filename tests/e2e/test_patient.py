"""The patient's web chat, end to end: a guest asks, the answer streams in, the second turn
is answered with the history, a reload keeps the session, another user cannot see or open
it, and the language switch works."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from .conftest import Stack, new_context, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response

pytestmark = pytest.mark.e2e

ANSWER = 'article[data-status="complete"].msg-assistant'


def start_as_guest(page: Page, stack: Stack) -> None:
    page.goto(stack.url)
    page.get_by_role("heading", name="这不是诊断").wait_for()
    page.get_by_role("button", name="以访客身份开始").click()
    page.get_by_label("您的问题").wait_for()


def sse_events(response: Response) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in response.text().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def ask(page: Page, question: str) -> list[tuple[str, dict[str, object]]]:
    """Type a question, press Enter, wait for the whole streamed answer; returns its events."""
    answers = page.locator(ANSWER).count()
    with page.expect_response(lambda r: r.url.endswith("/messages")) as info:
        page.get_by_label("您的问题").fill(question)
        page.get_by_label("您的问题").press("Enter")
    response = info.value
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    page.locator(ANSWER).nth(answers).wait_for()
    return sse_events(response)


@pytest.fixture(scope="module")
def consultation(browser: Browser, stack: Stack) -> dict[str, str]:
    """A guest's two-turn consultation, asked through the UI once for the module's tests."""
    context = new_context(browser)
    page = context.new_page()
    start_as_guest(page, stack)
    first = ask(page, "我头痛三天了，还有点发烧")
    page.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
    second = ask(page, "需要去医院吗？")
    screenshot(page, "chat")
    state = context.storage_state()
    session_id = page.url.rsplit("/", 1)[-1]
    context.close()
    return {
        "session_id": session_id,
        "first": json.dumps(first),
        "second": json.dumps(second),
        "state": json.dumps(state),
    }


def test_guest_question_streams_an_answer(consultation: dict[str, str]) -> None:
    events = [e for e, _ in json.loads(consultation["first"])]
    assert events[0] == "meta" and events[-1] == "done"
    assert "delta" in events
    done = json.loads(consultation["first"])[-1][1]
    assert done["message"]["role"] == "assistant"
    assert done["disclaimer"]  # every answer says it is not a diagnosis


def test_second_turn_is_answered_with_the_history(consultation: dict[str, str]) -> None:
    first = dict(json.loads(consultation["first"]))
    second = dict(json.loads(consultation["second"]))
    assert first["meta"]["turns_used"] == 1  # the question
    assert second["meta"]["turns_used"] == 3  # the first question and answer, then this one
    assert second["meta"]["prompt_tokens"] > first["meta"]["prompt_tokens"]


def test_reload_keeps_the_session(
    browser: Browser, stack: Stack, consultation: dict[str, str]
) -> None:
    context = new_context(browser, storage_state=json.loads(consultation["state"]))
    try:
        page = context.new_page()
        page.goto(f"{stack.url}/chat/{consultation['session_id']}")
        page.locator(ANSWER).nth(1).wait_for()
        page.reload()
        page.locator(ANSWER).nth(1).wait_for()
        questions = page.locator("article.msg-user").all_inner_texts()
        assert questions == ["我头痛三天了，还有点发烧", "需要去医院吗？"]
        sidebar = page.get_by_role("navigation", name="咨询记录")
        link = sidebar.get_by_role("link", name="我头痛三天了，还有点发烧")
        assert link.get_attribute("aria-current") == "page"
        # The page's disclaimer is always there.
        assert page.get_by_text("回答由 AI 模型生成，不构成诊断").is_visible()
    finally:
        context.close()


def test_another_user_cannot_see_or_open_the_session(
    page: Page, stack: Stack, consultation: dict[str, str]
) -> None:
    start_as_guest(page, stack)
    sidebar = page.get_by_role("navigation", name="咨询记录")
    sidebar.get_by_text("还没有咨询记录").wait_for()
    page.goto(f"{stack.url}/chat/{consultation['session_id']}")
    page.get_by_role("alert").filter(has_text="这条咨询记录已不存在").wait_for()
    assert page.get_by_text("我头痛三天了").count() == 0
    r = page.request.get(f"{stack.url}/api/sessions/{consultation['session_id']}")
    assert r.status == 404


def test_emergency_notice_is_an_alert_above_the_answer(page: Page, stack: Stack) -> None:
    start_as_guest(page, stack)
    ask(page, "突然胸痛，左臂发麻")
    answer = page.locator(ANSWER).first
    notice = answer.get_by_role("alert")
    assert "请立即拨打120" in notice.inner_text()
    assert notice.is_visible()


def test_language_switch(page: Page, stack: Stack) -> None:
    page.goto(stack.url)
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.get_by_role("button", name="English").click()
    page.get_by_role("heading", name="This is not a diagnosis").wait_for()
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("button", name="Start as guest").click()
    page.get_by_label("Your question").wait_for()
    page.reload()  # the choice is remembered
    page.get_by_role("button", name="New consultation").wait_for()
    screenshot(page, "chat-en")
    page.get_by_role("button", name="中文").click()
    page.get_by_role("button", name="新建咨询").wait_for()
