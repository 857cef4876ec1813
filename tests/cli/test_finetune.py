"""`medchat finetune` against the gateway: upload with a progress bar, create, list, status,
events, cancel; errors print the gateway's message with line numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.datasets import GOOD_ROW, jsonl
from tests.support.platform import make_key
from tests.support.tokenizers import SFT_EXAMPLES

MEDCHAT = str(Path(sys.executable).with_name("medchat"))


def run(url: str, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDCHAT_URL": url, "MEDCHAT_API_KEY": key}
    return subprocess.run(
        [MEDCHAT, "finetune", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_round_trip(
    gateway_url: str, database_url: str, base_model: str, tmp_path: Path
) -> None:
    key = make_key(database_url, "admin")
    uploaded = run(gateway_url, key, "upload", str(SFT_EXAMPLES))
    assert uploaded.returncode == 0, uploaded.stderr
    file_id = uploaded.stdout.strip()
    assert file_id.startswith("file-") and "rows" in uploaded.stderr

    created = run(
        gateway_url, key, "create", "--model", base_model, "--file", file_id, "--epochs", "1"
    )
    assert created.returncode == 0, created.stderr
    job_id = created.stdout.strip()
    assert job_id in run(gateway_url, key, "list").stdout
    status = json.loads(run(gateway_url, key, "status", job_id).stdout)
    assert status["hyperparameters"]["n_epochs"] == 1
    assert "cancelled" in run(gateway_url, key, "cancel", job_id).stdout
    events = run(gateway_url, key, "events", job_id).stdout
    assert "Created fine-tuning job" in events and "cancelled" in events
    followed = run(gateway_url, key, "events", job_id, "--follow")
    assert "job cancelled" in followed.stderr

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl(GOOD_ROW) + b"{nope\n")
    refused = run(gateway_url, key, "upload", str(bad))
    assert (
        refused.returncode == 1 and "line 2" in refused.stderr and "invalid_json" in refused.stderr
    )

    patient_key = make_key(database_url, "integrator")
    assert "admins only" in run(gateway_url, patient_key, "list").stderr
