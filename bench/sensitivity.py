"""A few what-ifs next to the main tables: the Spot hazard (no published rate, aws-facts §5) and the
configuration knobs behind the goals our rows miss. Each variant reruns some policies on one workload
with parameter overrides on top of the run's own."""

from __future__ import annotations

from dataclasses import dataclass

from bench.models import Params
from bench.policies import POLICIES
from bench.results import Result
from bench.runner import Case
from bench.workloads import Workload

SERVICES = ("ours_worker", "cpu_target", "qpfs", "keda")


@dataclass(frozen=True)
class Variant:
    title: str
    workload: str
    overrides: tuple[str, ...]
    policies: tuple[str, ...] = tuple(POLICIES)


VARIANTS = (
    Variant("no Spot interruptions", "heavy_tail", ("spot_hazard_per_h=0",)),
    Variant("Spot hazard 2%/task-h", "heavy_tail", ("spot_hazard_per_h=0.02",)),
    Variant("Spot hazard 5%/task-h", "heavy_tail", ("spot_hazard_per_h=0.05",)),
    Variant("services all on Fargate Spot (on_demand_weight=0)", "steady", ("on_demand_weight=0",), SERVICES),
    Variant("no nudge: jobs sent with a plain SQS client", "steady", ("nudge_on_submit=0",), ("ours_worker",)),
    Variant("no nudge: jobs sent with a plain SQS client", "burst500", ("nudge_on_submit=0",), ("ours_worker",)),
    Variant("scale-in grace 60 s", "steady", ("scale_in_grace_s=60",), ("ours_worker",)),
    Variant(
        "worker service all on Spot, scale-in grace 60 s",
        "steady",
        ("on_demand_weight=0", "scale_in_grace_s=60"),
        ("ours_worker",),
    ),
    Variant("live queue reads 60 s stale", "bursty", ("queue_read_lag_s=60",), ("ours_worker", "keda")),
    Variant(
        "submitter MaximumConcurrency unset (ramps to 1,000)",
        "burst500",
        ("esm_max_concurrency=0",),
        ("ours_dedicated",),
    ),
    Variant("submitter MaximumConcurrency 5", "burst500", ("esm_max_concurrency=5",), ("ours_dedicated",)),
    Variant("submitter MaximumConcurrency 10", "burst500", ("esm_max_concurrency=10",), ("ours_dedicated",)),
)

COLUMNS = ("variant", "policy", "p95 s", "cost x LB", "lost", "Spot interruptions", "busy killed", "launch /s")


def cases(workloads: list[Workload], p: Params, policies: list[str]) -> list[Case]:
    """The variants whose workload is part of this run, for the policies being run."""
    by_name = {w.name: w for w in workloads}
    out = []
    for v in VARIANTS:
        if v.workload in by_name:
            params = p.with_overrides(list(v.overrides))
            out += [Case(v.title, by_name[v.workload], name, params) for name in v.policies if name in policies]
    return out


def rows(runs: list[tuple[Case, Result]], lower_bounds: dict[str, Result]) -> list[list[str]]:
    out = []
    for case, r in runs:
        lb = lower_bounds[case.workload.name]
        rate = "" if r.launch_rate is None else f"{r.launch_rate:.1f}"
        out.append(
            [
                f"{case.group} ({case.workload.name})",
                r.label,
                f"{r.wait(95):,.1f}",
                f"{r.unit_cost / lb.unit_cost:.2f}",
                str(r.lost + r.unfinished),
                str(r.interruptions),
                str(r.killed_busy),
                rate,
            ]
        )
    return out
