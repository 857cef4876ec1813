"""DISC-MedLLM's evaluation cases (eval/samples): CMB-clin's clinical cases, and patient
questions from CMD (by department) and CMID (by intent)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EvalSet:
    key: str  # what --set takes
    source: str  # the `source` field of DISC-MedLLM's dialogue and score files
    samples: str  # file name under samples/


SETS: dict[str, EvalSet] = {
    s.key: s
    for s in (
        EvalSet("cmb-clin", "CMB-clin", "CMB-cases.json"),
        EvalSet("cmd", "CMD", "cmd_samples.json"),
        EvalSet("cmid", "CMID", "cmid_samples.json"),
    )
}


@dataclass(frozen=True)
class Case:
    id: str
    source: str
    first_question: str
    case: str | None = None  # the full record the simulated patient reads (CMB-clin only)
    department: str | None = None
    dataset_info: dict[str, Any] = field(default_factory=dict)


class DatasetError(ValueError):
    pass


def eval_set(key: str) -> EvalSet:
    try:
        return SETS[key.lower()]
    except KeyError:
        raise DatasetError(f"unknown evaluation set {key!r}; one of: {', '.join(SETS)}") from None


def _case(row: dict[str, Any], source: str) -> Case:
    if source == "CMB-clin":
        return Case(str(row["id"]), source, row["first_question"], case=row["case"])
    if source == "CMD":
        department = row.get("department")
        info = {"department": department} if department else {}
        return Case(
            str(row["id"]), source, row["question"], department=department, dataset_info=info
        )
    return Case(
        str(row["id"]), source, row["question"], dataset_info=dict(row.get("dataset_info") or {})
    )


def load_cases(data_dir: Path, key: str, limit: int | None = None) -> list[Case]:
    """The cases of one set, in file order (the first `limit` of them)."""
    s = eval_set(key)
    path = data_dir / "samples" / s.samples
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"no samples file at {path} (set MEDCHAT_EVAL_DATA_DIR)") from None
    try:
        cases = [_case(r, s.source) for r in rows]
    except (KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: a case lacks {exc}") from None
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{path}: case ids repeat; resuming by id would be ambiguous")
    return cases[:limit] if limit is not None else cases
