"""The last `medchat engine probe` result, kept as one small JSON file.

The CLI writes it; `medchat doctor` and the gateway's `/readyz` read it, so an operator sees
whether the engine was last proven to compute the model's own logprobs, and when. The file
holds the probe's `--json` output; the fields read here are `verdict` ("pass", "fail" or
"unsupported"), `at` (ISO 8601, UTC), `max_abs_logprob_diff` and `tolerance`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

NEVER_RUN = "never run"


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Replace the record atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_record(path: Path) -> dict[str, Any] | None:
    """The record, None when no probe has written one; a file that cannot be read or parsed
    comes back as verdict "unreadable" with the reason."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"verdict": "unreadable", "detail": f"{path}: {exc}"}
    if not isinstance(value, dict) or "verdict" not in value:
        return {"verdict": "unreadable", "detail": f"{path}: not a probe record"}
    return value


def describe(record: dict[str, Any] | None) -> str:
    """One line: "pass at 2026-12-05T01:02:03Z (max |Δlogprob| 1.2e-05, tolerance 1e-03)",
    or "never run"."""
    if record is None:
        return NEVER_RUN
    verdict = str(record.get("verdict"))
    if verdict == "unreadable":
        return f"unreadable ({record.get('detail')})"
    line = f"{verdict} at {record.get('at', '?')}"
    diff, tolerance = record.get("max_abs_logprob_diff"), record.get("tolerance")
    if isinstance(diff, int | float) and isinstance(tolerance, int | float):
        line += f" (max |Δlogprob| {diff:.1e}, tolerance {tolerance:.0e})"
    elif record.get("detail"):
        line += f" ({record['detail']})"
    return line
