"""Clinicians in the loop, in two browsers: a guest asks for a clinician from the chat; a
clinician (created by an admin) signs in on a phone-sized screen, finds the case in the queue,
claims it (the model pauses), replies and closes it; the patient's open page shows the
hand-off, the reply (as the clinician's, live, without a reload) and the end of it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from .conftest import Stack, new_context, screenshot
from .test_patient import ask, start_as_guest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-clinician-pass-1"
REPLY = "您好，我是王医生。建议近期到消化内科做胃镜检查。"


@pytest.fixture(scope="module")
def clinician_email(stack: Stack) -> str:
    email = f"dr-{uuid.uuid4().hex[:8]}@hospital.test"
    with stack.admin() as admin:
        r = admin.post(
            "/api/admin/clinicians",
            json={
                "email": email,
                "password": PASSWORD,
                "display_name": "王医生",
                "title": "主治医师",
            },
        )
        assert r.status_code == 201, r.text
    return email


def clinician_signs_in(page: Page, stack: Stack, email: str) -> None:
    page.goto(stack.url)
    page.get_by_label("邮箱或手机号").fill(email)
    page.get_by_label("密码（至少 8 位）").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url("**/clinician")
    page.get_by_role("tab", name="待处理").wait_for()


def test_claim_reply_close_reach_the_patient_live(
    browser: Browser, stack: Stack, clinician_email: str
) -> None:
    patient_context = new_context(browser)
    phone = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    phone.set_default_timeout(30_000)
    try:
        patient = patient_context.new_page()
        start_as_guest(patient, stack)
        ask(patient, "我胃疼三天了")
        patient.get_by_role("button", name="转人工").click()
        banner = patient.get_by_role("status").filter(has_text="已为您转接人工")
        banner.wait_for()

        dr = phone.new_page()
        clinician_signs_in(dr, stack, clinician_email)
        dr.get_by_role("link", name="患者要求人工").first.click()
        dr.get_by_text("我胃疼三天了").wait_for()  # the conversation, for the clinician
        assert dr.get_by_text("AI 生成").count() >= 1  # the model's answer is labelled
        screenshot(dr, "clinician-case-open")
        dr.get_by_role("button", name="接手").click()
        dr.get_by_test_id("case-state").filter(has_text="已接手").wait_for()
        dr.get_by_label("回复患者").fill(REPLY)
        dr.get_by_role("button", name="发送").click()

        # Live, without a reload: the clinician's reply, signed, and the hand-off's state.
        reply = patient.get_by_role("article", name="医生回复")
        reply.filter(has_text=REPLY).wait_for()
        assert "王医生 · 主治医师" in reply.inner_text()
        assert "AI 生成" not in reply.inner_text()
        patient.get_by_text("AI 已暂停：您的消息会直接交给医生。").wait_for()
        patient.get_by_text("接诊医生：王医生 · 主治医师").wait_for()
        screenshot(patient, "patient-hand-off")

        dr.get_by_test_id("case-state").filter(has_text="已回复").wait_for()
        screenshot(dr, "clinician-case-answered")
        dr.get_by_role("button", name="结束病例").click()
        dr.get_by_test_id("case-state").filter(has_text="已结束").wait_for()
        # The hand-off is over on the patient's page too; they may ask again.
        patient.get_by_text("AI 已暂停：您的消息会直接交给医生。").wait_for(state="detached")
        patient.get_by_role("button", name="转人工").wait_for()
        patient.reload()
        patient.get_by_role("article", name="医生回复").filter(has_text=REPLY).wait_for()
    finally:
        phone.close()
        patient_context.close()
