"""The demo's distributed job: one 2-rank data-parallel job (worker.example_ddp), one rank interrupted.

It goes through the real submitter and task-events handlers like any dedicated job; the emulator runs each rank
as a local process (MASTER_ADDR 127.0.0.1). Once rank 0 has checkpointed, rank 1 gets a Spot interruption; the
gang restarts from the checkpoint. The record lists every rank of every attempt and the time from submit to all
ranks running.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from local.control import ControlPlane

JOB_ID = "demo-gang"
NODES = 2
STEPS = 120
CHECKPOINT_EVERY = 10
RESUMED = re.compile(rf"^rank 0 of {NODES}, job {JOB_ID} attempt \d+: resumed from step (?P<step>\d+)", re.MULTILINE)


def submit_args(step_seconds: float) -> tuple[str, ...]:
    command = (
        f"python -m worker.example_ddp --steps {STEPS} --checkpoint-every {CHECKPOINT_EVERY} "
        f"--step-seconds {step_seconds}"
    )
    return ("--job-id", JOB_ID, "--dedicated", "--nodes", str(NODES), "--command", command)


def ranks(control: ControlPlane) -> list[dict[str, Any]]:
    """Every rank task the gang had, as the emulator ran it: attempt, rank, provider, status, exit code."""
    found = []
    for arn, local in list(control.ecs.tasks.items()):
        task = control.ecs.backend.tasks[control.ecs.cluster][arn]
        if task.started_by != JOB_ID:
            continue
        tags = {t["key"]: t["value"] for t in task.tags or []}
        exit_codes = [c.exitCode for c in task.containers if task.last_status == "STOPPED"]
        found.append(
            {
                "attempt": int(tags.get("attempt", 0)),
                "rank": int(tags.get("rank", -1)),
                "task_id": local.task_id,
                "capacity_provider": task.capacity_provider_name,
                "last_status": task.last_status,
                "stop_code": task.stop_code if task.last_status == "STOPPED" else None,
                "exit_code": exit_codes[0] if exit_codes else None,
                "log": local.log_path.name if local.log_path else None,
            }
        )
    return sorted(found, key=lambda r: (r["attempt"], r["rank"]))


def maybe_interrupt(
    control: ControlPlane, item: Mapping[str, Any] | None, say: Callable[[str], None]
) -> dict[str, Any]:
    """Interrupt rank 1 once the gang runs and rank 0 has logged a checkpointed step ({} until then)."""
    if not item or item.get("state") != "RUNNING":
        return {}
    arns = list(item.get("gang_tasks") or [])
    rank0 = control.ecs.tasks.get(arns[0]) if arns else None
    if rank0 is None or rank0.log_path is None or not rank0.log_path.exists():
        return {}
    if f"step {CHECKPOINT_EVERY}/" not in rank0.log_path.read_text(errors="replace"):
        return {}
    say(f"==> Spot interruption: rank 1 of {JOB_ID} (task {arns[1].rsplit('/', 1)[-1][:8]}) gets SIGTERM + the event")
    control.ecs.interrupt(arns[1])
    return {"t": round(time.monotonic() - control.started, 2), "task_arn": arns[1], "rank": 1}


def _first(history: list[Mapping[str, Any]], to: str, after: str = "") -> str | None:
    return next((str(h["at"]) for h in history if h.get("to") == to and str(h["at"]) > after), None)


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 2)


def resumed_from(logs_dir: Path) -> int | None:
    """The step the gang's last attempt resumed from, as rank 0 logged it."""
    steps = [
        int(m["step"])
        for log in sorted(logs_dir.glob("job-*.log"))
        for m in RESUMED.finditer(log.read_text(errors="replace"))
    ]
    return steps[-1] if steps else None


def record(control: ControlPlane, item: Mapping[str, Any] | None) -> dict[str, Any]:
    history = list((item or {}).get("history") or [])
    submitted, retried = _first(history, "SUBMITTED"), _first(history, "RETRYING")
    return {
        "job_id": JOB_ID,
        "nodes": NODES,
        "state": (item or {}).get("state"),
        "submit_to_all_ranks_running_s": _seconds(submitted, _first(history, "RUNNING")),
        "restart_to_all_ranks_running_s": _seconds(retried, _first(history, "RUNNING", after=retried or "~")),
        "resumed_from_step": resumed_from(control.ecs.logs_dir),
        "ranks": ranks(control),
    }


def summary(gang: Mapping[str, Any]) -> list[str]:
    resumed = f", resumed from checkpoint step {gang['resumed_from_step']}" if gang["resumed_from_step"] else ""
    lines = [
        f"    distributed: {gang['job_id']} ({gang['nodes']} ranks) ended {gang['state']}{resumed}",
        f"      submit -> all ranks running: {gang['submit_to_all_ranks_running_s']} s; "
        f"restart -> all ranks running: {gang['restart_to_all_ranks_running_s']} s",
    ]
    for rank in gang["ranks"]:
        end = (
            f"{rank['stop_code']}, exit {rank['exit_code']}"
            if rank["last_status"] == "STOPPED"
            else rank["last_status"]
        )
        lines.append(
            f"      attempt {rank['attempt']} rank {rank['rank']}: task {rank['task_id'][:8]} on "
            f"{rank['capacity_provider']}, {end} (logs/{rank['log']})"
        )
    return lines
