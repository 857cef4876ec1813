"""`medchat serve` runs the gateway from MEDCHAT_* settings; `medchat chat` talks to it
in a terminal with streamed answers, /history and /quit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.engine_emulator import EmulatorHandle
from tests.support.platform import REDIS_URL, REPLY
from tests.support.servers import free_port

MEDCHAT = str(Path(sys.executable).with_name("medchat"))


def test_serve_and_chat(database_url: str, engine: EmulatorHandle, sp_dir: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MEDCHAT_DATABASE_URL": database_url,
        "MEDCHAT_REDIS_URL": REDIS_URL,
        "MEDCHAT_ENGINE_URL": engine.url,
        "MEDCHAT_TOKENIZER_PATH": str(sp_dir),
        "MEDCHAT_ENVIRONMENT": "test",
    }
    server = subprocess.Popen(
        [MEDCHAT, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "serve did not start"
            time.sleep(0.2)
        chat = subprocess.run(
            [MEDCHAT, "chat", "--url", url],
            input="我头痛\n/history\n/quit\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert chat.returncode == 0, chat.stderr
        assert chat.stdout.count("".join(REPLY)) == 2  # streamed, then in /history
        assert "不能替代医生" in chat.stdout
    finally:
        server.terminate()
        output = server.communicate(timeout=15)[0].decode()
    # JSON log lines, with request ids, and no patient text.
    assert '"request_id"' in output and "我头痛" not in output


@pytest.mark.parametrize(
    ("tokenizer", "profile", "named"),
    [
        ("/nonexistent/tokenizer", "disc-medllm", "does not exist"),
        (None, "no-such-profile", "unknown model profile 'no-such-profile'"),
        ("EMPTY", "disc-medllm", "holds no tokenizer.json"),
    ],
)
def test_a_bad_tokenizer_or_profile_is_one_clear_line(
    sp_dir: Path, tmp_path: Path, tokenizer: str | None, profile: str, named: str
) -> None:
    """Start-up refuses what it cannot build prompts with, naming the setting and the fix,
    without a traceback."""
    path = {None: str(sp_dir), "EMPTY": str(tmp_path)}.get(tokenizer, tokenizer)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDCHAT_")}
    env.update(MEDCHAT_TOKENIZER_PATH=str(path), MEDCHAT_PROFILE=profile)
    r = subprocess.run(
        [MEDCHAT, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and named in r.stderr
    assert "MEDCHAT_TOKENIZER_PATH" in r.stderr and "MEDCHAT_PROFILE" in r.stderr
