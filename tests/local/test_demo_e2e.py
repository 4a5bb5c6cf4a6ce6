"""End to end: ``python -m local`` with a small scenario, and the invariants of its recorded run.

Everything is real: the synthesized template deployed into a moto server on 127.0.0.1, the three Lambda
handlers in their own processes, the reference worker and the example trainer as local processes, trainctl.
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
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    process = subprocess.run(
        [sys.executable, "-m", "local", "--jobs", "3", "--seed", "2", "--out", str(out), "--timeout", "300"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    record = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
    return process, record, out


def test_the_demo_succeeds_and_writes_its_outputs(run: tuple) -> None:
    process, _, out = run
    assert process.returncode == 0, process.stderr[-3000:]
    assert (out / "timeline.png").stat().st_size > 10_000
    assert "==> summary" in process.stdout and "jobs lost: 0" in process.stdout


def test_every_job_is_terminal_and_none_is_lost(run: tuple) -> None:
    _, record, _ = run
    assert record["finished"] and record["lost"] == []
    # 3 burst jobs, the dedicated one, the distributed one, the sweep's parent and 3 children, the invalid one
    assert len(record["jobs"]) == 10
    assert {j["state"] for j in record["jobs"]} <= {"SUCCEEDED", "REJECTED"}
    assert record["states"] == {"SUCCEEDED": 9, "REJECTED": 1}


def test_the_sweep_ran_every_child_and_its_cost_is_their_sum(run: tuple) -> None:
    _, record, _ = run
    jobs = {j["job_id"]: j for j in record["jobs"]}
    children = [j for j in record["jobs"] if j["parent_id"] == "demo-sweep"]
    assert len(children) == 3 and all(c["state"] == "SUCCEEDED" and c["cost_usd"] > 0 for c in children)
    assert jobs["demo-sweep"]["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in children), abs=1e-6)
    assert jobs["demo-dedicated"]["cost_usd"] > 0 and "sweep total demo-sweep: $" in run[0].stdout


def test_the_invalid_job_is_rejected_with_its_reasons(run: tuple) -> None:
    _, record, _ = run
    (invalid,) = [j for j in record["jobs"] if j["job_id"] == "demo-invalid"]
    assert invalid["state"] == "REJECTED"
    assert "cpu" in invalid["reason"] and "colour" in invalid["reason"]


def test_the_interrupted_job_resumed_from_its_checkpoint_and_succeeded(run: tuple) -> None:
    _, record, _ = run
    assert record["interruption"], "no Spot interruption was injected"
    interrupted = [j for j in record["jobs"] if j["interruptions"] and j["queue"] == "worker"]
    assert len(interrupted) == 1  # the distributed job's is checked below
    job = interrupted[0]
    assert job["state"] == "SUCCEEDED" and job["attempt"] == 2
    assert job["resumed_from_step"] and job["resumed_from_step"] > 0


def test_the_worker_service_scaled_from_zero_and_back(run: tuple) -> None:
    _, record, _ = run
    scaling = record["scaling"]
    assert scaling["desired_first"] == 0 and scaling["desired_max"] >= 1 and scaling["desired_last"] == 0
    assert any(c["state"] == "ALARM" and "Backlog" in c["alarm"] for c in scaling["alarm_changes"])


def test_the_dedicated_job_ran_as_its_own_task(run: tuple) -> None:
    _, record, _ = run
    (dedicated,) = [j for j in record["jobs"] if j["job_id"] == "demo-dedicated"]
    assert dedicated["state"] == "SUCCEEDED" and dedicated["queue"] == "dispatch"
    assert dedicated["capacity_provider"] in ("FARGATE_SPOT", "FARGATE")


def test_no_handler_failed(run: tuple) -> None:
    _, record, _ = run
    assert all(v["errors"] == 0 for v in record["invocations"].values()), record["invocations"]
    assert record["notes"] == []


# --- the distributed job: rank 1 interrupted once rank 0 checkpointed; the gang restarts on on-demand ---


def test_the_gang_succeeded_after_one_interruption(run: tuple) -> None:
    record = run[1]
    (job,) = [j for j in record["jobs"] if j["job_id"] == "demo-gang"]
    assert job["state"] == "SUCCEEDED" and job["queue"] == "dispatch"
    assert job["attempt"] == 2 and job["interruptions"] == 1
    assert record["gang_interruption"]["rank"] == 1


def test_every_attempt_ran_all_ranks_on_one_provider(run: tuple) -> None:
    record = run[1]
    ranks = record["gang"]["ranks"]
    assert [(r["attempt"], r["rank"]) for r in ranks] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    first, second = ranks[:2], ranks[2:]
    assert {r["capacity_provider"] for r in first} == {"FARGATE_SPOT"}
    assert {r["capacity_provider"] for r in second} == {"FARGATE"}  # after an interruption: on-demand
    assert first[1]["stop_code"] == "SpotInterruption"
    # rank 0 either stopped at the checkpoint both ranks agreed on (exit 143) or was stopped by the gang first
    assert (first[0]["stop_code"], first[0]["exit_code"]) in {("EssentialContainerExited", 143), ("UserInitiated", 143)}
    assert all(r["last_status"] == "STOPPED" for r in ranks)  # no rank left running
    assert [r["exit_code"] for r in second] == [0, 0]


def test_the_gang_resumed_from_rank_0s_checkpoint(run: tuple) -> None:
    record = run[1]
    gang = record["gang"]
    assert gang["resumed_from_step"] and 0 < gang["resumed_from_step"] < 120
    assert gang["submit_to_all_ranks_running_s"] is not None and gang["restart_to_all_ranks_running_s"] is not None
