"""Averages per dataset and model (the four criteria and their mean, as DISC-MedLLM reports
them), from score files (its published `gpt4_scores` or our runs' JSONL) or from runs in
Postgres; a table and a chart comparing models."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .judge import JudgeParseError, Scores, parse_scores
from .prompts import CRITERIA


@dataclass(frozen=True)
class Scored:
    source: str
    model: str
    id: str
    scores: Scores


@dataclass
class Group:
    source: str
    model: str
    n: int
    means: dict[str, float]

    @property
    def overall(self) -> float:
        """The mean of the four criterion averages (the published "Average" column)."""
        return sum(self.means[c] for c in CRITERIA) / len(CRITERIA)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "model": self.model,
            "n": self.n,
            **{c: self.means[c] for c in CRITERIA},
            "overall": self.overall,
        }


@dataclass
class Loaded:
    rows: list[Scored] = field(default_factory=list)
    # (file:line, why) for rows whose scores could not be read: reported, never averaged.
    skipped: list[tuple[str, str]] = field(default_factory=list)


def scored_from_row(row: dict[str, Any]) -> Scores:
    """The scores of one JSONL row: the published string form, or a mapping."""
    raw = row.get("scores")
    if isinstance(raw, dict):
        raw = "\n".join(f"{k}: {v}" for k, v in raw.items())
    if not isinstance(raw, str):
        raise JudgeParseError("no scores field")
    return parse_scores(raw)


def read_score_file(path: Path, loaded: Loaded | None = None) -> Loaded:
    """Rows of a JSONL score file (DISC-MedLLM's `result_*.jsonl`, or ours)."""
    loaded = loaded or Loaded()
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{number}"
            try:
                row = json.loads(line)
                scores = scored_from_row(row)
            except (ValueError, AttributeError) as exc:
                loaded.skipped.append((where, str(exc) or type(exc).__name__))
                continue
            loaded.rows.append(
                Scored(
                    str(row.get("source", "?")),
                    str(row.get("model", "?")),
                    str(row.get("id")),
                    scores,
                )
            )
    return loaded


def read_paths(paths: Iterable[Path]) -> Loaded:
    """Files, and directories (every *.jsonl inside, sorted)."""
    loaded = Loaded()
    for p in paths:
        for f in sorted(p.glob("*.jsonl")) if p.is_dir() else [p]:
            read_score_file(f, loaded)
    return loaded


def aggregate(rows: Iterable[Scored]) -> list[Group]:
    """One group per (dataset, model), in order of first appearance. A case scored twice for
    the same model (two files of one run) counts once: its last scores."""
    by_key: dict[tuple[str, str], dict[str, Scores]] = defaultdict(dict)
    for r in rows:
        by_key[(r.source, r.model)][r.id] = r.scores
    groups = []
    for (source, model), cases in by_key.items():
        means = {c: sum(s[c] for s in cases.values()) / len(cases) for c in CRITERIA}
        groups.append(Group(source, model, len(cases), means))
    return groups


def render_chart(groups: Sequence[Group], out: Path) -> list[Path]:
    """A grouped bar chart per dataset: the four criteria and the overall average, one bar
    per model. Written as `out` with .png and .svg suffixes; returns both paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    sources = list(dict.fromkeys(g.source for g in groups))
    models = list(dict.fromkeys(g.model for g in groups))
    labels = [*CRITERIA, "Overall"]
    fig, axes = plt.subplots(
        1, len(sources), figsize=(1.0 + 5.2 * len(sources), 4.2), squeeze=False, sharey=True
    )
    width = 0.8 / max(len(models), 1)
    lowest = min((min(*g.means.values(), g.overall) for g in groups), default=1.0)
    for ax, source in zip(axes[0], sources, strict=True):
        for i, model in enumerate(models):
            g = next((g for g in groups if g.source == source and g.model == model), None)
            if g is None:
                continue
            values = [*(g.means[c] for c in CRITERIA), g.overall]
            xs = [x + (i - (len(models) - 1) / 2) * width for x in range(len(labels))]
            bars = ax.bar(xs, values, width, label=model)
            ax.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7, padding=1)
        ax.set_title(f"{source} (n={max((g.n for g in groups if g.source == source), default=0)})")
        ax.set_xticks(range(len(labels)), [lab.replace(" ", "\n") for lab in labels], fontsize=8)
        ax.set_ylim(max(0.0, min(lowest - 0.5, 4.0)), 5.15)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("mean score (1-5)")
    handles: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    written = []
    for suffix in (".png", ".svg"):
        path = out.with_suffix(suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150 if suffix == ".png" else None)
        written.append(path)
    plt.close(fig)
    return written
