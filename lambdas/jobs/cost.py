"""Per-job cost (pure): usage of each attempt, then the job's cost from the deployment's Fargate price table.

Fargate bills vCPU and memory per second with a one-minute minimum (aws-facts.md §5), from the task's start to
its stop. Each attempt records ``{attempt, capacity_provider, seconds, vcpu_seconds, gb_seconds, interrupted}``
in the job's ``usage`` list, and the job's cost is re-priced from the whole list at each attempt's end (so a
write that ends the job later, e.g. a cancel while RETRYING, finds it already on the record): ``cost_usd``,
``on_demand_cost_usd`` (the same usage all on FARGATE), ``saving_usd``, ``interrupted_cost_usd`` /
``interrupted_vcpu_seconds`` (compute lost to interruptions) and the totals ``vcpu_seconds`` / ``gb_seconds``.
An attempt on a provider without a price (e.g. the EC2 GPU provider) counts in the usage but not in the dollars
(``unpriced_attempts``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

FARGATE = "FARGATE"
MIN_BILLED_SECONDS = 60
"""Fargate: per-second billing with a one-minute minimum (aws-facts.md §5)."""
COST_FIELDS = ("cost_usd", "on_demand_cost_usd", "saving_usd", "interrupted_cost_usd")
METRICS_NAMESPACE = "TrainingAutoscaler"


@dataclass(frozen=True)
class Rate:
    vcpu_hour: float
    gb_hour: float

    def price(self, vcpu_seconds: float, gb_seconds: float) -> float:
        return (vcpu_seconds * self.vcpu_hour + gb_seconds * self.gb_hour) / 3600


def parse_prices(text: str) -> dict[str, Rate]:
    """``{"FARGATE": {"vcpu_hour": .., "gb_hour": ..}, "FARGATE_SPOT": {..}}`` (one region's table, as the
    CDK app passes it in FARGATE_PRICES); raises ValueError naming the problem."""
    try:
        table = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(table, dict) or FARGATE not in table:
        raise ValueError(f"must be an object with at least a {FARGATE!r} entry")
    rates = {}
    for provider, entry in table.items():
        values = [entry.get(k) if isinstance(entry, dict) else None for k in ("vcpu_hour", "gb_hour")]
        numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0]
        if len(numbers) != 2:
            raise ValueError(f"{provider}: needs vcpu_hour and gb_hour as numbers >= 0")
        rates[provider] = Rate(*numbers)
    return rates


def attempt_usage(
    *,
    attempt: int,
    cpu: int,
    memory: int,
    provider: str | None,
    started: datetime | None,
    stopped: datetime,
    interrupted: bool,
) -> dict[str, Any]:
    """What one attempt used: billed seconds (0 if it never started, else at least 60) times its size."""
    seconds = 0 if started is None else max(MIN_BILLED_SECONDS, math.ceil((stopped - started).total_seconds()))
    return {
        "attempt": attempt,
        "capacity_provider": provider or "unknown",
        "seconds": seconds,
        "vcpu_seconds": round(cpu / 1024 * seconds, 3),
        "gb_seconds": round(memory / 1024 * seconds, 3),
        "interrupted": interrupted,
    }


def job_cost(usage: Iterable[Mapping[str, Any]], prices: Mapping[str, Rate]) -> dict[str, Any]:
    """The job's dollars and totals from its attempts' usage (fields listed in the module docstring)."""
    totals = dict.fromkeys((*COST_FIELDS, "vcpu_seconds", "gb_seconds", "interrupted_vcpu_seconds"), 0.0)
    unpriced = 0
    for entry in usage:
        vcpu, gb = float(entry["vcpu_seconds"]), float(entry["gb_seconds"])
        totals["vcpu_seconds"] += vcpu
        totals["gb_seconds"] += gb
        if entry.get("interrupted"):
            totals["interrupted_vcpu_seconds"] += vcpu
        rate = prices.get(str(entry.get("capacity_provider")))
        if rate is None:
            unpriced += 1
            continue
        cost = rate.price(vcpu, gb)
        totals["cost_usd"] += cost
        totals["on_demand_cost_usd"] += prices[FARGATE].price(vcpu, gb)
        if entry.get("interrupted"):
            totals["interrupted_cost_usd"] += cost
    totals["saving_usd"] = totals["on_demand_cost_usd"] - totals["cost_usd"]
    result: dict[str, Any] = {k: round(v, 6) for k, v in totals.items()}
    if unpriced:
        result["unpriced_attempts"] = unpriced
    return result


def sum_costs(records: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """A sweep's totals: the sum of its children's cost fields (children without a cost count as 0)."""
    keys = (*COST_FIELDS, "vcpu_seconds", "gb_seconds", "interrupted_vcpu_seconds")
    totals = dict.fromkeys(keys, 0.0)
    for record in records:
        for key in keys:
            value = record.get(key)
            if isinstance(value, int | float):
                totals[key] += value
    return {k: round(v, 6) for k, v in totals.items()}


def record_fields(
    previous: Iterable[Mapping[str, Any]], attempt: Mapping[str, Any], prices: Mapping[str, Rate] | None
) -> dict[str, Any]:
    """Job-record fields for an attempt that ended: the usage list with it appended, plus the job's cost so far
    when the deployment has prices. A job that ends without another attempt (cancelled or past its max_wait
    while RETRYING) keeps that cost: no path that ends a waiting job needs prices."""
    usage = [dict(entry) for entry in previous] + [dict(attempt)]
    fields: dict[str, Any] = {"usage": usage}
    if prices:
        fields.update(job_cost(usage, prices))
    return fields


def emf_line(
    *, at: datetime, job_id: str, state: str, queue: str | None, cost: Mapping[str, Any], parent_id: str | None
) -> str:
    """One CloudWatch embedded-metric-format log line for a finished job (cost, saving, lost compute)."""
    metrics = {
        "JobCostUSD": cost.get("cost_usd", 0.0),
        "JobSavingUSD": cost.get("saving_usd", 0.0),
        "JobVcpuSeconds": cost.get("vcpu_seconds", 0.0),
        "JobInterruptedVcpuSeconds": cost.get("interrupted_vcpu_seconds", 0.0),
    }
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(at.timestamp() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [["State", "Queue"]],
                    "Metrics": [{"Name": name, "Unit": "None"} for name in metrics],
                }
            ],
        },
        "State": state,
        "Queue": queue or "unknown",
        "job_id": job_id,
        **({"parent_id": parent_id} if parent_id else {}),
        **metrics,
    }
    return json.dumps(document, separators=(",", ":"))
