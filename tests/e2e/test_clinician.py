"""Clinicians in the loop, end to end in Chromium: an admin creates a clinician (API); a guest
asks a question, then presses "转人工"; the clinician signs in on a phone-sized screen, finds
the case in the queue, claims it (the model paused), marks the AI answer correct, replies and
closes the case. The patient's open page follows every step live, without a reload: the
hand-off banner (claimed by whom, the model paused), a question held for the clinician instead
of answered, the clinician's signed reply, and the end of the hand-off."""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING

import httpx
import pytest

from .conftest import Stack, new_context, screenshot
from .test_patient import ANSWER, ask, sse_events, start_as_guest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

pytestmark = pytest.mark.e2e
PASSWORD = "e2e-clinician-password"
NAME, TITLE = "王医生", "主治医师"
REPLY = "建议您尽快到消化内科就诊，先做一次胃镜检查。"
PHONE: ViewportSize = {"width": 390, "height": 844}  # the console must be usable on a phone


@pytest.fixture(scope="module")
def clinician_email(stack: Stack) -> str:
    email = f"clinician-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "display_name": NAME, "title": TITLE}
    with stack.admin() as admin:
        r = admin.post("/api/admin/clinicians", json=body)
    assert r.status_code == 201, r.text
    return email


def sign_in_as_clinician(page: Page, stack: Stack, email: str) -> None:
    page.goto(stack.url)
    page.get_by_label("邮箱或手机号").fill(email)
    page.get_by_label("密码（至少 8 位）").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url(re.compile(r"/clinician$"))  # clinicians land on the console, not the chat


def test_clinician_claims_replies_and_closes_while_the_patient_watches(
    browser: Browser, stack: Stack, clinician_email: str
) -> None:
    patient_ctx = new_context(browser)
    clinician_ctx = browser.new_context(locale="zh-CN", viewport=PHONE, is_mobile=True)
    clinician_ctx.set_default_timeout(30_000)
    try:
        patient = patient_ctx.new_page()
        start_as_guest(patient, stack)
        ask(patient, "我胃疼两周了，吃完饭更疼")
        patient.wait_for_url(re.compile(r"/chat/[0-9a-f-]{36}$"))
        session_id = patient.url.rsplit("/", 1)[-1]
        # Every model answer is labelled as such.
        assert patient.locator(ANSWER).first.get_by_text("AI 生成").is_visible()

        with patient.expect_response(lambda r: r.url.endswith("/handoff")) as info:
            patient.get_by_role("button", name="转人工").click()
        assert info.value.status == 201
        case_id = info.value.json()["case_id"]
        banner = patient.get_by_role("status", name="人工接诊")
        banner.wait_for()
        assert banner.get_attribute("data-state") == "open"
        assert patient.get_by_role("button", name="转人工").count() == 0

        # The clinician, on a phone: the case is in the queue (polled), with its reason.
        doc = clinician_ctx.new_page()
        sign_in_as_clinician(doc, stack, clinician_email)
        row = doc.locator(f'li.case-row[data-case="{case_id}"]')
        row.wait_for()
        assert "患者要求人工" in row.inner_text()
        assert row.get_attribute("data-state") == "open"
        screenshot(doc, "clinician-queue-390")
        row.get_by_role("link").click()
        doc.wait_for_url(f"**/clinician/cases/{case_id}")
        doc.get_by_text("我胃疼两周了，吃完饭更疼").wait_for()
        assert doc.locator('[data-role="assistant"]').first.get_by_text("AI 生成").is_visible()
        pause = doc.get_by_label("接手后暂停 AI")
        assert pause.is_checked()  # pausing the model is the default
        doc.get_by_role("button", name="接手", exact=True).click()
        doc.get_by_test_id("case-state").filter(has_text="已接手").wait_for()

        # The patient sees who took it and that the model is paused, live.
        patient.get_by_text(f"接诊医生：{NAME} · {TITLE}").wait_for()
        patient.get_by_text("AI 已暂停：您的消息会直接交给医生。").wait_for()
        assert banner.get_attribute("data-paused") == "true"

        # A question now is held for the clinician: no model answer appears.
        answers = patient.locator("article.msg-assistant").count()
        with patient.expect_response(lambda r: r.url.endswith("/messages")) as info:
            patient.get_by_label("您的问题").fill("需要做什么检查吗？")
            patient.get_by_label("您的问题").press("Enter")
        assert [e for e, _ in sse_events(info.value)] == ["meta", "held"]
        patient.locator("article.msg-user").filter(has_text="需要做什么检查吗？").wait_for()
        patient.get_by_role("button", name="发送").wait_for()  # the turn is over
        assert patient.locator("article.msg-assistant").count() == answers
        doc.get_by_text("需要做什么检查吗？").wait_for()  # the clinician has it (polled)

        # The clinician reviews the AI answer and replies.
        ai = doc.locator('[data-role="assistant"]').first
        with doc.expect_response(lambda r: r.url.endswith("/reviews")) as review:
            ai.get_by_role("button", name="回答正确").click()
        assert review.value.status == 201, review.value.text()
        ai.get_by_text(f"已由{NAME}审核").wait_for()
        doc.get_by_label("回复患者").fill(REPLY)
        doc.get_by_role("button", name="发送", exact=True).click()
        doc.locator('[data-role="clinician"]').filter(has_text=REPLY).wait_for()
        doc.get_by_test_id("case-state").filter(has_text="已回复").wait_for()
        screenshot(doc, "clinician-case-390")

        # The reply reaches the patient's open page as the clinician's, not the model's.
        reply = patient.get_by_role("article", name="医生回复")
        reply.filter(has_text=REPLY).wait_for()
        assert f"{NAME} · {TITLE}" in reply.inner_text()
        assert "AI 生成" not in reply.inner_text()
        assert banner.get_attribute("data-state") == "answered"
        screenshot(patient, "patient-handoff")
        patient.set_viewport_size(PHONE)
        screenshot(patient, "patient-handoff-390")
        patient.set_viewport_size({"width": 1200, "height": 800})

        # The clinician closes the case: the patient's banner goes, the button comes back.
        doc.get_by_role("button", name="结束病例").click()
        doc.get_by_test_id("case-state").filter(has_text="已结束").wait_for()
        doc.get_by_role("button", name="English").click()  # the console in English too
        doc.get_by_test_id("case-state").filter(has_text="Closed").wait_for()
        doc.get_by_text(f"Reviewed by {NAME}").wait_for()
        screenshot(doc, "clinician-case-closed-390-en")
        banner.wait_for(state="detached")
        patient.get_by_role("button", name="转人工").wait_for()
        assert patient.get_by_role("article", name="医生回复").count() == 1

        # Read again, the answer says a clinician reviewed it, instead of only "AI".
        patient.reload()
        reviewed = patient.locator("article.msg-assistant").first
        reviewed.get_by_text(f"已由{NAME}审核").wait_for()
        assert reviewed.get_attribute("data-ai-generated") is None
        assert patient.get_by_role("article", name="医生回复").filter(has_text=REPLY).count() == 1

        # Through the API as well: the case is closed and the session holds the reply.
        r = patient.request.get(f"{stack.url}/api/sessions/{session_id}")
        roles = [m["role"] for m in r.json()["messages"]]
        assert roles == ["user", "assistant", "user", "clinician"]
        queue = doc.request.get(f"{stack.url}/api/cases", params={"state": "closed"})
        assert case_id in [c["id"] for c in queue.json()["data"]]
    finally:
        patient_ctx.close()
        clinician_ctx.close()


def test_patients_cannot_open_the_console(browser: Browser, stack: Stack) -> None:
    context = new_context(browser)
    try:
        page = context.new_page()
        start_as_guest(page, stack)
        page.goto(f"{stack.url}/clinician")
        page.get_by_role("alert").filter(has_text="仅医生和管理员可访问").wait_for()
        r = page.request.get(f"{stack.url}/api/cases")
        assert r.status == 403
    finally:
        context.close()


def test_the_clinician_api_contract(stack: Stack, clinician_email: str) -> None:
    """The console's calls, without a browser: a clinician signs in like a patient (cookie and
    CSRF token) and reads the queue."""
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        r = client.post("/api/auth/login", json={"email": clinician_email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert r.json()["user"]["role"] == "clinician"
        r = client.get("/api/cases", params={"state": "all"})
        assert r.status_code == 200, r.text
        assert set(json.loads(r.text)) >= {"data", "has_more"}
