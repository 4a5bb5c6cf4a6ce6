"""``python -m bench`` end to end on a small run: tables, JSON, plots, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.models import Params
from bench.plots import timeline_png
from bench.policies import OURS, POLICIES
from bench.policies.lower_bound import NAME as LOWER_BOUND
from bench.runner import simulate
from bench.workloads import SYNTHETIC, build


def test_quick_run_writes_tables_json_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--out", str(tmp_path), "--processes", "1"]) == 0
    printed = capsys.readouterr().out
    data = json.loads((tmp_path / "results.json").read_text())
    assert set(data["workloads"]) == set(SYNTHETIC)
    for name, workload in data["workloads"].items():
        assert set(workload["policies"]) == {*POLICIES, LOWER_BOUND}
        for policy in OURS:
            assert workload["policies"][policy]["jobs"]["lost"] == 0
            assert set(workload["goals"][policy]) >= {"p95_within_15s_of_start_latency", "zero_lost"}
        assert workload["policies"][LOWER_BOUND]["ratio_to_lower_bound"]["cost"] == 1.0
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
        assert f"== {name}:" in printed
    assert data["sensitivity"] and data["params"]["spot_hazard_per_h"] == 0.005
    markdown = (tmp_path / "results.md").read_text()
    assert markdown.count("| policy | p50 s |") == len(SYNTHETIC)
    assert "## Sensitivity" in markdown and "burst launch rate" in markdown


def test_timeline_png_draws_every_policy_on_every_panel(tmp_path: Path) -> None:
    w = build("burst500", Params(), 3, 1.0)
    results = {name: simulate(name, w, Params(), 3) for name in [*POLICIES, LOWER_BOUND]}
    drawn = timeline_png(tmp_path / "burst500.png", w, results)
    labels = sorted(r.label for r in results.values())
    assert list(drawn) == ["queue depth (visible)", "desired tasks", "running tasks"]
    assert all(sorted(policies) == labels for policies in drawn.values())
    assert (tmp_path / "burst500.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trace_option_adds_the_trace_workload(tmp_path: Path) -> None:
    trace = tmp_path / "jobs.csv"
    trace.write_text("submit_time,duration,cpu,memory\n0,600,1024,2048\n30,120,2048,8192\n")
    out = tmp_path / "out"
    args = ["--workloads", "steady", "--trace", str(trace), "--quick", "--out", str(out), "--processes", "1"]
    assert main([*args, "--no-plots", "--no-what-ifs"]) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["workloads"]["trace"]["jobs"] == 2
    assert data["workloads"]["trace"]["policies"]["ours_dedicated"]["jobs"]["completed"] == 2


def test_bad_input_fails_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("submit_time,duration,cpu,memory\n0,600,1024,2048\n1,x,1024,2048\n")
    assert main(["--trace", str(trace), "--out", str(tmp_path)]) == 2
    assert f"{trace} line 3: duration must be a number" in capsys.readouterr().err
    assert main(["--set", "bogus=1", "--out", str(tmp_path)]) == 2
    assert main(["--policies", "ours_worker,nope", "--out", str(tmp_path)]) == 2
    assert "unknown policies" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_params_listing_names_every_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--params"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("spot_hazard_per_h") and "NOT FOUND" in line for line in lines)
