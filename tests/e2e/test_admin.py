"""The admin console, end to end: an admin uploads DISC-MedLLM's SFT examples and sees the
validation report (token statistics from the worker); a broken line is shown by number."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.tokenizers import SFT_EXAMPLES

from .conftest import Stack, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e
PASSWORD = "e2e-admin-password"


@pytest.fixture(scope="module")
def admin_email(stack: Stack) -> str:
    """An account made admin with the admin API key (PATCH /api/admin/users/{id})."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    r = httpx.post(f"{stack.url}/api/auth/signup", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    with stack.admin() as admin:
        r = admin.patch(f"/api/admin/users/{r.json()['user']['id']}", json={"role": "admin"})
        assert r.status_code == 200, r.text
    return email


def sign_in(page: Page, stack: Stack, email: str) -> None:
    page.goto(stack.url)
    page.get_by_label("邮箱或手机号").fill(email)
    page.get_by_label("密码（至少 8 位）").fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.get_by_role("link", name="管理后台").click()
    page.get_by_role("heading", name="上传 JSONL 数据集").wait_for()


def test_upload_shows_the_validation_report(page: Page, stack: Stack, admin_email: str) -> None:
    if not SFT_EXAMPLES.exists():
        pytest.skip(f"no {SFT_EXAMPLES} (the shared data beside this checkout)")
    sign_in(page, stack, admin_email)
    page.get_by_label("JSONL 文件").set_input_files(str(SFT_EXAMPLES))
    page.get_by_role("button", name="上传", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/datasets/[^/]+$"))
    page.get_by_role("heading", name=SFT_EXAMPLES.name).wait_for()
    # The worker computes the token-level report; the page shows it when it is there.
    page.get_by_role("heading", name="Token 统计").wait_for(timeout=90_000)
    rows = page.locator(".stats-grid div").filter(has_text="行数").locator("dd")
    assert rows.inner_text() == "163"
    assert page.get_by_test_id("truncated-rows").inner_text().replace(",", "").isdigit()
    assert page.get_by_role("img", name=re.compile("每行 token 数分布")).is_visible()
    assert page.locator(".chart canvas").count() >= 1  # the histogram is drawn
    screenshot(page, "dataset-report")


def test_broken_line_is_shown_by_number(
    page: Page, stack: Stack, admin_email: str, tmp_path: Path
) -> None:
    turns = [{"role": "user", "content": "头痛"}, {"role": "assistant", "content": "多休息"}]
    good = json.dumps({"conversation": turns}, ensure_ascii=False)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(f"{good}\n{good}\n{{not json\n{good}\n", encoding="utf-8")
    sign_in(page, stack, admin_email)
    page.get_by_label("JSONL 文件").set_input_files(str(broken))
    page.get_by_role("button", name="上传", exact=True).click()
    failure = page.get_by_role("alert").filter(has_text="文件未通过校验")
    failure.wait_for()
    assert failure.get_by_test_id("problem-line").all_inner_texts() == ["3"]
    screenshot(page, "upload-broken")


def test_audit_log_shows_the_admins_upload(
    page: Page, stack: Stack, admin_email: str, tmp_path: Path
) -> None:
    turns = [{"role": "user", "content": "头痛"}, {"role": "assistant", "content": "多休息"}]
    good = tmp_path / "audited.jsonl"
    good.write_text(json.dumps({"conversation": turns}, ensure_ascii=False) + "\n", "utf-8")
    sign_in(page, stack, admin_email)
    page.get_by_label("JSONL 文件").set_input_files(str(good))
    page.get_by_role("button", name="上传", exact=True).click()
    page.wait_for_url(re.compile(r"/admin/datasets/[^/]+$"))
    file_id = page.url.rsplit("/", 1)[-1]
    page.get_by_role("link", name="审计日志").click()
    page.get_by_label("操作（前缀）").fill("file.upload")
    page.get_by_role("button", name="筛选").click()
    row = page.get_by_role("row").filter(has_text=f"file:{file_id}")
    row.wait_for()
    text = row.inner_text()
    assert "file.upload" in text and "admin" in text and "cookie" in text, text
    assert "头痛" not in page.content()  # the log holds no content
    screenshot(page, "audit-log")


def test_admin_chooses_the_model_that_serves_patients(
    page: Page, stack: Stack, admin_email: str
) -> None:
    """A published fine-tune (here another tiny model, merged) is switched to from the Models
    page; the unpinned `transformers serve` of `medchat up` loads it, passes the gateway's
    tokenization canary, and answers patients from then on."""
    from services.core.registry import publish
    from tests.support.tiny_model import build_tiny_marker_model

    root = stack.data_dir.parent
    staging = build_tiny_marker_model(root / "ft-staging", root / "tokenizer", seed=7)
    name = publish(
        stack.data_dir / "models",
        staging,
        base="model",
        suffix="e2e",
        job_id="ftjob-e2e000000000000000000",
        kind="merged",
        profile="disc-medllm",
    ).name
    try:
        sign_in(page, stack, admin_email)
        page.get_by_role("link", name="模型").click()
        row = page.get_by_role("row").filter(has_text=name)
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="用于服务").click()
        row.get_by_text("正在服务").wait_for(timeout=120_000)  # the engine loads it first
        screenshot(page, "admin-models-switched")
        with stack.admin() as admin:
            assert admin.get("/api/admin/serving").json()["model"] == name
            r = admin.post(
                "/v1/chat/completions",
                json={"model": "x", "messages": [{"role": "user", "content": "头痛"}]},
            )
            assert r.status_code == 200, r.text
            assert r.json()["model"] == name
            audit = admin.get("/api/admin/audit", params={"action": "admin.model_switch"})
            assert audit.json()["data"][0]["details"]["to"] == name
    finally:
        with stack.admin() as admin:  # the other tests talk to the base model
            base = admin.get("/api/admin/serving").json()["default_model"]
            assert admin.put("/api/admin/serving", json={"model": base}).status_code == 200
