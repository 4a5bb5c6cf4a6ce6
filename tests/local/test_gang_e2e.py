"""End to end: a 2-rank distributed job in local mode (``python -m local``), through the real submitter and
task-events handlers, each rank a local process exchanging gradients with the other. Rank 1 gets a Spot
interruption once rank 0 has checkpointed; the whole gang restarts on on-demand from that checkpoint and succeeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("gang")
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    process = subprocess.run(
        [sys.executable, "-m", "local", "--jobs", "1", "--seed", "5", "--out", str(out), "--timeout", "300"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert "distributed: demo-gang (2 ranks) ended SUCCEEDED" in process.stdout
    return dict(json.loads((out / "run.json").read_text()))


def test_the_gang_succeeded_after_one_interruption(record: dict[str, Any]) -> None:
    (job,) = [j for j in record["jobs"] if j["job_id"] == "demo-gang"]
    assert job["state"] == "SUCCEEDED" and job["queue"] == "dispatch"
    assert job["attempt"] == 2 and job["interruptions"] == 1
    assert record["gang_interruption"]["rank"] == 1


def test_every_attempt_ran_all_ranks_on_one_provider(record: dict[str, Any]) -> None:
    ranks = record["gang"]["ranks"]
    assert [(r["attempt"], r["rank"]) for r in ranks] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    first, second = ranks[:2], ranks[2:]
    assert {r["capacity_provider"] for r in first} == {"FARGATE_SPOT"}
    assert {r["capacity_provider"] for r in second} == {"FARGATE"}  # after an interruption: on-demand
    assert [r["stop_code"] for r in first] == ["UserInitiated", "SpotInterruption"]  # rank 0 stopped by the gang
    assert all(r["last_status"] == "STOPPED" for r in ranks)  # no rank left running
    assert [r["exit_code"] for r in second] == [0, 0]


def test_the_gang_resumed_from_rank_0s_checkpoint(record: dict[str, Any]) -> None:
    gang = record["gang"]
    assert gang["resumed_from_step"] and 0 < gang["resumed_from_step"] < 120
    assert gang["submit_to_all_ranks_running_s"] is not None and gang["restart_to_all_ranks_running_s"] is not None


def test_no_handler_failed(record: dict[str, Any]) -> None:
    assert all(v["errors"] == 0 for v in record["invocations"].values()), record["invocations"]
    assert record["notes"] == []
