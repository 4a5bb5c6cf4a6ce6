"""The demo's record (``run.json``), its timeline (``timeline.png``) and the printed summary."""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from local import gang

if TYPE_CHECKING:
    from local.cloud import Plays
    from local.control import ControlPlane
    from local.scenario import Observer, Scenario


def _seconds_between(start: Any, end: Any) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds(), 2)


def record(
    scenario: Scenario, plays: Plays, control: ControlPlane, observer: Observer, *, wall_s: float, finished: bool
) -> dict[str, Any]:
    """What happened; ``lost`` (submitted jobs without a record) is only meaningful when ``finished``."""
    items = observer.jobs()
    jobs = []
    for job_id in scenario.job_ids:
        item = items.get(job_id, {})
        jobs.append(
            {
                "job_id": job_id,
                "state": item.get("state"),
                "attempt": item.get("attempt"),
                "interruptions": item.get("interruptions", 0),
                "capacity_provider": item.get("capacity_provider"),
                "queue": item.get("queue"),
                "reason": item.get("reason"),
                "enqueue_to_start_s": _seconds_between(item.get("submitted_at"), item.get("started_at")),
                "run_s": _seconds_between(item.get("started_at"), item.get("finished_at")),
                "parent_id": item.get("parent_id"),
                **{key: item[key] for key in COST_FIELDS if key in item},
            }
        )
    desired = [s["desired"] for s in observer.samples]
    resumed = _resumed_from_checkpoint(control.ecs.logs_dir)
    for job in jobs:
        job["resumed_from_step"] = resumed.get(job["job_id"])
    return {
        "scenario": {"jobs": scenario.jobs, "seed": scenario.seed, "step_seconds": scenario.step_seconds},
        "finished": finished,
        "wall_seconds": round(wall_s, 1),
        "jobs": jobs,
        "states": dict(Counter(str(j["state"]) for j in jobs)),
        "lost": [j["job_id"] for j in jobs if j["state"] is None],
        "scaling": {
            "desired_first": desired[0] if desired else None,
            "desired_max": max(desired, default=0),
            "desired_last": desired[-1] if desired else None,
            "alarm_changes": [{"t": round(t, 2), "alarm": a, "state": s} for t, a, s in control.alarm_changes],
        },
        "interruption": scenario.interruption,
        "gang_interruption": scenario.gang_interruption,
        "gang": gang.record(control, items.get(gang.JOB_ID)),
        "task_launches_by_capacity_provider": dict(control.ecs.launches),
        "invocations": {name: {"count": f.invocations, "errors": f.errors} for name, f in control.functions.items()},
        "events_delivered": control.router.delivered,
        "notes": list(control.notes),
        "samples": observer.samples,
        "stack_outputs": dict(plays.outputs),
    }


COST_FIELDS = ("cost_usd", "on_demand_cost_usd", "saving_usd", "interrupted_cost_usd")
"""Recorded by task events for dedicated jobs (and summed on a sweep's parent); see jobs/cost.py."""

RESUMED = re.compile(r"^\[(?P<job>[^#\]]+)#\d+\] job \S+ attempt \d+: resumed from step (?P<step>\d+)", re.MULTILINE)


def _resumed_from_checkpoint(logs_dir: Path) -> dict[str, int]:
    """Job id -> the step its last attempt resumed from, as the example trainer logged it."""
    resumed: dict[str, int] = {}
    for log in sorted(logs_dir.glob("*.log")):
        for match in RESUMED.finditer(log.read_text(errors="replace")):
            resumed[match["job"]] = int(match["step"])
    return resumed


def write(run: dict[str, Any], out: Path) -> None:
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    plot(run, out / "timeline.png")


def plot(run: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = run["samples"]
    t = [s["t"] for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    axes[0].plot(t, [s["worker_queue_visible"] for s in samples], label="worker queue: waiting")
    axes[0].plot(t, [s["worker_queue_in_flight"] for s in samples], label="worker queue: in flight")
    axes[0].plot(t, [s["dispatch_queue_visible"] for s in samples], label="dispatch queue: waiting")
    axes[0].set_ylabel("messages")
    axes[1].step(t, [s["desired"] for s in samples], where="post", label="workers desired")
    axes[1].step(t, [s["running"] for s in samples], where="post", label="workers running")
    axes[1].step(t, [s["training_tasks"] for s in samples], where="post", label="dedicated training tasks")
    axes[1].set_ylabel("tasks")
    states = sorted({state for s in samples for state in s["jobs"]})
    for state in states:
        axes[2].plot(t, [s["jobs"].get(state, 0) for s in samples], label=state)
    axes[2].set_ylabel("jobs")
    axes[2].set_xlabel("seconds since the control plane started")
    for change in run["scaling"]["alarm_changes"]:
        for ax in axes:
            ax.axvline(change["t"], color="grey", linewidth=0.6, linestyle=":")
    if run["interruption"]:
        for ax in axes:
            ax.axvline(run["interruption"]["t"], color="red", linewidth=1.0, linestyle="--")
    for ax in axes:
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"make demo: {run['scenario']['jobs']} jobs, seed {run['scenario']['seed']}"
        " (dotted: alarm changes, red: Spot interruption)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _costs(jobs: list[dict[str, Any]]) -> list[str]:
    """Dollar cost per dedicated job and per sweep (worker-queue jobs share the worker service's cost)."""
    priced = [j for j in jobs if "cost_usd" in j]
    if not priced:
        return []
    lines = ["    cost (dedicated tasks, at the config's Fargate prices; worker-queue jobs are the service's):"]
    for job in priced:
        saving = f", saving ${job['saving_usd']:.6f} vs on-demand" if job.get("saving_usd") else ""
        kind = "sweep total" if any(j.get("parent_id") == job["job_id"] for j in jobs) else "job"
        lines.append(f"      {kind} {job['job_id']}: ${job['cost_usd']:.6f}{saving}")
    return lines


def summary(run: dict[str, Any], out: Path) -> str:
    jobs = run["jobs"]
    waits = [j["enqueue_to_start_s"] for j in jobs if j["enqueue_to_start_s"] is not None]
    lines = ["", "==> summary", f"    jobs by state: {', '.join(f'{n} {s}' for s, n in sorted(run['states'].items()))}"]
    lines.append(f"    jobs lost: {len(run['lost'])}")
    if waits:
        lines.append(
            f"    enqueue -> start: median {statistics.median(waits):.1f} s, max {max(waits):.1f} s ({len(waits)} jobs)"
        )
    lines += _costs(jobs)
    for job in jobs:
        if job["interruptions"] or (job["attempt"] or 1) > 1:
            resumed = f", resumed from checkpoint step {job['resumed_from_step']}" if job["resumed_from_step"] else ""
            lines.append(
                f"    retried: {job['job_id']} ({job['queue']} queue) ended {job['state']} after {job['attempt']} "
                f"attempt(s), {job['interruptions']} Spot interruption(s){resumed}"
            )
        if job["state"] == "REJECTED":
            lines.append(f"    rejected: {job['job_id']}: {job['reason']}")
        elif job["state"] == "FAILED":
            lines.append(f"    failed: {job['job_id']}: {job['reason']}")
    if run["gang"]["ranks"]:
        lines += gang.summary(run["gang"])
    scaling = run["scaling"]
    lines.append(
        f"    worker service desired count: {scaling['desired_first']} -> {scaling['desired_max']}"
        f" -> {scaling['desired_last']}"
        f"; task launches by capacity provider: {run['task_launches_by_capacity_provider']}"
    )
    calls = ", ".join(
        f"{name}: {v['count']}" + (f" ({v['errors']} errors)" if v["errors"] else "")
        for name, v in run["invocations"].items()
    )
    lines.append(f"    Lambda invocations: {calls}")
    if run["notes"]:
        lines.append(f"    control-plane notes: {len(run['notes'])} (see run.json)")
    lines.append(
        f"    wall time: {run['wall_seconds']} s; record: {out / 'run.json'}, timeline: {out / 'timeline.png'}"
    )
    return "\n".join(lines)
