"""End-to-end tests: the built web UI in headless Debian Chromium (Playwright), against the
real stack that `medchat up` starts (embedded Postgres and Redis, gateway, Celery worker,
`transformers serve` on a tiny random-weight model). The model answers noise: these tests
check what the patient and the admin see and do, not the medical content.

Select them with `-m e2e`. They skip, saying why, without /usr/bin/chromium
(`apt-get install chromium`), the `playwright` package (the dev extra), the built frontend
(`npm run build` in frontend/) or torch (the serve extra)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.support.servers import free_port, wait_ready

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "frontend" / "dist"
CHROMIUM = Path(os.environ.get("MEDCHAT_E2E_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = 240.0
MAX_NEW_TOKENS = 12  # noise either way; short answers keep the suite quick on two cores


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: end-to-end browser tests against `medchat up` (Chromium, Playwright)"
    )


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"no {CHROMIUM}: apt-get install -y chromium chromium-driver"
    if not (DIST / "index.html").is_file():
        return f"no built frontend at {DIST}: run `npm ci && npm run build` in frontend/"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed: pip install -e '.[dev]'"
    try:
        import torch  # noqa: F401
    except ImportError:
        return "torch is not installed (the serve extra): `medchat up --model` cannot serve"
    return None


@dataclass(frozen=True)
class Stack:
    url: str
    data_dir: Path
    admin_key: str

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=30
        )


def _medchat(*args: str, env: dict[str, str], **kw: Any) -> subprocess.Popen[bytes]:
    # `python -m services.cli` is the `medchat` command, run from this checkout.
    return subprocess.Popen([sys.executable, "-m", "services.cli", *args], cwd=REPO, env=env, **kw)


@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    if reason := _missing():
        pytest.skip(reason)
    from tests.support.tiny_model import build_tiny_marker_model
    from tests.support.tokenizers import build_marker_hf_tokenizer

    # Not under pytest's tmp dir (mode 700): run as root, the embedded Postgres runs as its
    # own user, which must be able to reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="medchat-e2e-"))
    root.chmod(0o755)
    tokenizer = build_marker_hf_tokenizer(root / "tokenizer")
    model = build_tiny_marker_model(root / "model", tokenizer)
    data_dir, port = root / "data", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",  # the CLI would ask PyPI for a newer version
            "OMP_NUM_THREADS": "1",
            "MEDCHAT_MAX_NEW_TOKENS": str(MAX_NEW_TOKENS),
            "MEDCHAT_ENGINE_FIRST_TOKEN_TIMEOUT_S": "60",
            "MEDCHAT_WEBUI_DIR": str(DIST),
        }
    )
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        # The whole stack by `medchat up --model`: embedded Postgres and Redis, migrations,
        # `transformers serve` on the tiny model, the gateway (serving the built UI), a worker.
        log_path = root / "medchat-up.log"
        with log_path.open("wb") as log:
            proc = _medchat(
                *("up", "--model", str(model), "--data-dir", str(data_dir), "--port", str(port)),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        cleanup.callback(_stop_up, proc)
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/readyz", proc, log_path, STARTUP_TIMEOUT_S)
        key = subprocess.run(
            [
                *(sys.executable, "-m", "services.cli", "apikey", "create", "--role", "admin"),
                *("--name", "e2e", "--data-dir", str(data_dir)),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert key.returncode == 0, key.stderr
        yield Stack(url, data_dir, key.stdout.strip().splitlines()[-1])


def _stop_up(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # medchat up stops its children on Ctrl-C
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# Package scope, not session: Playwright's sync API keeps an event loop running in this
# thread until it stops, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="package")
def browser(stack: Stack) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def new_context(browser: Browser, **kw: Any) -> BrowserContext:
    context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 800}, **kw)
    context.set_default_timeout(30_000)
    return context


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    c = new_context(browser)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def screenshot(page: Page, name: str) -> None:
    """Kept where MEDCHAT_E2E_SCREENSHOTS points (for looking at the layout), if set."""
    if out := os.environ.get("MEDCHAT_E2E_SCREENSHOTS"):
        Path(out).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(out) / f"{name}.png"), full_page=True)
