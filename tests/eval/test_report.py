"""`medchat eval report`: DISC-MedLLM's published CMB-clin averages from its shipped score
files, a table per dataset and model, and the chart in PNG and SVG."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from services.cli.main import cli
from services.eval.report import aggregate, read_paths
from tests.eval.conftest import EVAL_DATA

SCORES = EVAL_DATA / "gpt4_scores"


def test_published_cmb_clin_averages_are_reproduced() -> None:
    """DISC-MedLLM's README: CMB-clin 4.64 / 4.47 / 4.66 / 4.99, average 4.69."""
    groups = aggregate(read_paths([SCORES / "result_DISC-MedLLM_cmb-clin.jsonl"]).rows)
    assert len(groups) == 1
    g = groups[0]
    assert (g.source, g.model, g.n) == ("CMB-clin", "DISC-MedLLM", 73)
    rounded = [round(g.means[c], 2) for c in g.means]
    assert rounded == [4.64, 4.47, 4.66, 4.99]
    assert round(g.overall, 2) == 4.69


def test_report_command_table_json_and_chart(tmp_path: Path) -> None:
    # A second model's file beside the shipped ones: the chart compares the two.
    other = tmp_path / "other.jsonl"
    rows = [
        {
            "id": str(i),
            "model": "tiny-ft",
            "source": "CMB-clin",
            "conversation": [],
            "scores": "Proactivity: 3\nAccuracy: 4\nHelpfulness: 4\nLinguistic Quality: 5",
        }
        for i in range(4)
    ]
    other.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")
    chart = tmp_path / "charts" / "cmp"
    runner = CliRunner()
    table = runner.invoke(cli, ["eval", "report", str(SCORES), str(other), "--chart", str(chart)])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    clin = next(line for line in lines if "CMB-clin" in line and "DISC-MedLLM" in line)
    cells = [cell.strip() for cell in clin.split("│")[3:9]]
    assert cells == ["73", "4.64", "4.47", "4.66", "4.99", "4.69"]
    assert "skipped other.jsonl:5" in table.stderr
    png, svg = chart.with_suffix(".png"), chart.with_suffix(".svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()[:500] and "tiny-ft" in svg.read_text()

    as_json = runner.invoke(
        cli, ["eval", "report", str(SCORES), str(other), "--json", "--no-chart"]
    )
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert [(d["source"], d["model"], d["n"]) for d in data] == [
        ("CMB-clin", "DISC-MedLLM", 73),
        ("CMD", "DISC-MedLLM", 120),
        ("CMID", "DISC-MedLLM", 120),
        ("CMB-clin", "tiny-ft", 4),
    ]
    assert data[3]["overall"] == 4.0


def test_report_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["eval", "report", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    nothing = runner.invoke(cli, ["eval", "report", str(empty), "--no-chart"])
    assert nothing.exit_code == 1 and "no scored cases" in nothing.output
