"""Tables (Markdown, JSON), the goal check and one timeline PNG per workload."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import sensitivity
from bench.models import Params
from bench.policies import OURS
from bench.policies.lower_bound import NAME as LOWER_BOUND
from bench.results import Result
from bench.runner import Case
from bench.workloads import Workload

# Goals from the issue (benchmark goals, reported, never asserted as timed tests).
P95_SLACK_S = 15.0
COST_RATIO = 1.10
LAUNCH_GOAL = 0.90  # of the launch budget (the benchmark issue's goal)

COLUMNS = (
    "policy",
    "p50 s",
    "p95 s",
    "p99 s",
    "busy task-h",
    "idle task-h",
    "cost $",
    "Spot",
    "scaling calls",
    "lost",
    "p95 x LB",
    "cost x LB",
)


def _num(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if math.isinf(x):
        return "∞"
    return f"{x:,.{digits}f}"


def table(results: dict[str, Result]) -> list[list[str]]:
    lb = results[LOWER_BOUND]
    rows = []
    for r in results.values():
        lost = str(r.lost) + (f" (+{r.unfinished} unfinished)" if r.unfinished else "")
        rows.append(
            [
                r.label,
                _num(r.wait(50)),
                _num(r.wait(95)),
                _num(r.wait(99)),
                _num(r.busy_h),
                _num(r.idle_h),
                _num(r.cost, 2),
                f"{r.spot_share:.0%}",
                "—" if r.scaling_calls is None else f"{r.scaling_calls:,}",
                lost,
                _num(r.wait(95) / lb.wait(95), 2),
                _num(r.unit_cost / lb.unit_cost, 2),
            ]
        )
    return rows


def goals(results: dict[str, Result]) -> dict[str, dict[str, Any]]:
    """Each of our rows against the goals: p95 wait, cost ratio, cheaper than every peer, 0 lost."""
    lb = results[LOWER_BOUND]
    peers = [r for name, r in results.items() if name not in (*OURS, LOWER_BOUND)]
    out: dict[str, dict[str, Any]] = {}
    for name in OURS:
        if name not in results:
            continue
        r = results[name]
        cheapest_peer = min((p.unit_cost for p in peers), default=math.inf)
        checks: dict[str, Any] = {
            "p95_within_15s_of_start_latency": r.wait(95) <= lb.wait(95) + P95_SLACK_S,
            "p95_excess_s": r.wait(95) - lb.wait(95),
            "cost_within_10pct_of_lower_bound": r.cost <= COST_RATIO * lb.cost,
            "cost_ratio": r.cost / lb.cost,
            "cheaper_than_every_peer": r.unit_cost < cheapest_peer,  # per completed job-hour
            "zero_lost": r.lost == 0 and r.unfinished == 0,
        }
        if r.launch_rate is not None or r.all_started_s is not None:
            rate, budget = r.launch_rate or 0.0, r.launch_budget or math.inf
            checks["burst_launch_rate_per_s"] = rate
            checks["burst_launch_budget_per_s"] = budget
            checks["burst_launch_rate_at_least_90pct_of_budget"] = rate >= LAUNCH_GOAL * budget
        out[name] = checks
    return out


def _markdown_table(rows: list[list[str]], columns: tuple[str, ...] = COLUMNS, left: int = 1) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(["---"] * left + ["---:"] * (len(columns) - left)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _text_table(rows: list[list[str]], columns: tuple[str, ...] = COLUMNS, left: int = 1) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    fmt = "  ".join(f"{{:<{w}}}" if i < left else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*columns), *(fmt.format(*row) for row in rows)])


def _goal_lines(results: dict[str, Result]) -> list[str]:
    lines = []
    for name, g in goals(results).items():
        label = results[name].label

        def mark(ok: bool) -> str:
            return "met" if ok else "MISSED"

        parts = [
            f"p95 {g['p95_excess_s']:+.1f} s vs start latency ({mark(g['p95_within_15s_of_start_latency'])})",
            f"cost {g['cost_ratio']:.3f}x LB ({mark(g['cost_within_10pct_of_lower_bound'])})",
            f"cheaper per completed job-hour than every peer: {mark(g['cheaper_than_every_peer'])}",
            f"0 lost: {mark(g['zero_lost'])}",
        ]
        if "burst_launch_rate_per_s" in g:
            rate, budget = g["burst_launch_rate_per_s"], g["burst_launch_budget_per_s"]
            parts.append(
                f"burst launch rate {rate:.1f}/s = {rate / budget:.0%} of the {budget:g}/s launch budget "
                f"({mark(g['burst_launch_rate_at_least_90pct_of_budget'])})"
            )
        lines.append(f"- {label}: " + "; ".join(parts))
    return lines


def _notes(results: dict[str, Result]) -> list[str]:
    notes = []
    for r in results.values():
        extra = []
        if r.lost or r.unfinished:
            extra.append(f"{r.lost} lost, {r.unfinished} unfinished (their work is not in the cost)")
        if r.killed_busy:
            extra.append(f"{r.killed_busy} busy tasks stopped by scale-in")
        if r.interruptions:
            extra.append(f"{r.interruptions} Spot interruptions")
        if r.lost_work_h >= 0.05:
            extra.append(f"{r.lost_work_h:.1f} task-h of work redone")
        if r.deferred:
            extra.append(f"{r.deferred} submitter deferrals")
        if r.all_started_s is not None and r.policy != LOWER_BOUND:
            rate = "—" if r.launch_rate is None else f"{r.launch_rate:.1f}/s"
            started = _num(r.all_started_s, 0)
            extra.append(f"burst: {r.burst_launched} tasks launched at {rate}, all jobs started after {started} s")
        if extra:
            notes.append(f"- {r.label}: " + "; ".join(extra))
    return notes


def setup(p: Params) -> str:
    """The setup every row shares, in one paragraph."""
    return (
        f"Common setup: this project's stack defaults (cdk_app/config.py) except the task cap, raised to "
        f"{p.max_tasks} for every policy (stack: 10 workers, 50 dedicated tasks). Every service, ours and the "
        f"peers', runs {p.job_vcpu:g} vCPU / {p.job_gb:g} GB workers (the largest job, for a trace) on the "
        f"cluster's default capacity strategy (FARGATE_SPOT weight {p.spot_weight}, FARGATE weight "
        f"{p.on_demand_weight}, base {p.on_demand_base}); dedicated tasks go to Spot first; the submitter's "
        f"SQS event source takes batches of {p.esm_batch} with a {p.esm_window_s:g} s window, at most "
        f"{p.esm_max_concurrency or 'an unlimited number of'} at a time (MaximumConcurrency, read from "
        f"cdk_app/submitter_function.py). Fargate start "
        f"latency lognormal, median {p.start_median_s:g} s, p99 {p.start_p99_ratio:g}x median; Spot "
        f"interruptions {p.spot_hazard_per_h:.1%} per task-hour with a {p.spot_notice_s:g} s notice; jobs "
        f"checkpoint every {p.checkpoint_interval_s:g} s. Prices us-east-1 Linux/x86: ${p.price_vcpu_h}/vCPU-h, "
        f"${p.price_gb_h}/GB-h on-demand, Spot {p.spot_multiple:g}x (assumption), billed from image pull, "
        f"1-minute minimum. Peers' workers heartbeat their messages (no duplicate runs) but have no task "
        f"protection; their queues keep QPFS's defaults (visibility {p.peer_visibility_s:g} s, "
        f"maxReceiveCount {p.peer_max_receive})."
    )


def render(
    workloads: list[Workload],
    all_results: dict[str, dict[str, Result]],
    *,
    header: str,
    what_ifs: list[tuple[Case, Result]],
    p: Params,
) -> tuple[str, str]:
    """(Markdown document, plain-text console version)."""
    md = [f"# Scaling benchmark\n\n{header}\n\n{setup(p)}\n"]
    txt = []
    first = next(iter(all_results.values()))
    md.append("## Policies\n")
    md += [f"- **{r.label}**: {r.summary}" for r in first.values()]
    for w in workloads:
        results = all_results[w.name]
        rows = table(results)
        title = f"{w.name}: {w.description} ({len(w.jobs):,} jobs)"
        md += [f"\n## {title}\n", _markdown_table(rows), "", "Goals:", *_goal_lines(results)]
        notes = _notes(results)
        if notes:
            md += ["", "Notes:", *notes]
        md.append(f"\n![{w.name}]({w.name}.png)")
        txt += ["", f"== {title}", _text_table(rows), *_goal_lines(results)]
    if what_ifs:
        lbs = {w.name: all_results[w.name][LOWER_BOUND] for w in workloads}
        rows = sensitivity.rows(what_ifs, lbs)
        intro = "What-ifs: the same workloads with a few parameters changed (overrides in results.json)."
        md += ["\n## Sensitivity\n", intro, "", _markdown_table(rows, sensitivity.COLUMNS, 2)]
        txt += ["", "== sensitivity", _text_table(rows, sensitivity.COLUMNS, 2)]
    md.append(
        "\nWaits: enqueue to the first start of the job's work. Busy: task time running jobs (work later redone "
        "included); idle: billed task time without a job (image pull, idle workers, 1-minute minimum). "
        "Scaling calls: RunTask + UpdateService + the scaler's tag writes. x LB: ratio to the clairvoyant lower bound "
        "(cost: per hour of completed job work, so lost jobs do not make a policy look cheaper); "
        "a warm worker pool can start jobs sooner than the bound (which starts a fresh task per job) "
        "by paying for idle tasks."
    )
    return "\n".join(md) + "\n", "\n".join(txt) + "\n"


def to_json(
    workloads: list[Workload],
    all_results: dict[str, dict[str, Result]],
    *,
    settings: dict[str, Any],
    p: Params,
    what_ifs: list[tuple[Case, Result]],
) -> dict[str, Any]:
    out: dict[str, Any] = {"settings": settings, "params": asdict(p), "workloads": {}}
    for w in workloads:
        results = all_results[w.name]
        lb = results[LOWER_BOUND]
        policies = {}
        for name, r in results.items():
            entry = r.to_json()
            entry["ratio_to_lower_bound"] = {
                "p50": r.wait(50) / lb.wait(50),
                "p95": r.wait(95) / lb.wait(95),
                "p99": r.wait(99) / lb.wait(99),
                "cost": r.cost / lb.cost,
                "cost_per_completed_job_h": r.unit_cost / lb.unit_cost,
            }
            policies[name] = entry
        out["workloads"][w.name] = {
            "description": w.description,
            "jobs": len(w.jobs),
            "policies": policies,
            "goals": goals(results),
        }
    out["sensitivity"] = [
        {
            "variant": case.group,
            "workload": case.workload.name,
            "policy": case.policy,
            "overrides": {k: v for k, v in asdict(case.params).items() if v != getattr(p, k)},
            "result": r.to_json(),
            "cost_per_completed_job_h_vs_lower_bound": r.unit_cost
            / all_results[case.workload.name][LOWER_BOUND].unit_cost,
        }
        for case, r in what_ifs
    ]
    return out


def write(
    out_dir: Path,
    workloads: list[Workload],
    all_results: dict[str, dict[str, Result]],
    *,
    header: str,
    settings: dict[str, Any],
    p: Params,
    what_ifs: list[tuple[Case, Result]],
    plots: bool = True,
) -> str:
    """Write results.md, results.json and the PNGs; return the console text."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md, txt = render(workloads, all_results, header=header, what_ifs=what_ifs, p=p)
    (out_dir / "results.md").write_text(md, encoding="utf-8")
    data = to_json(workloads, all_results, settings=settings, p=p, what_ifs=what_ifs)
    (out_dir / "results.json").write_text(json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")
    if plots:
        from bench.plots import timeline_png

        for w in workloads:
            timeline_png(out_dir / f"{w.name}.png", w, all_results[w.name])
    return txt


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: those become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
