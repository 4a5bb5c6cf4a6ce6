"""Per-job cost against figures computed by hand (us-east-1 prices as in cdk_app/prices.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from jobs.cost import attempt_usage, emf_line, job_cost, parse_prices, record_fields, sum_costs

PRICES = parse_prices(
    json.dumps(
        {
            "FARGATE": {"vcpu_hour": 0.04048, "gb_hour": 0.004445},
            "FARGATE_SPOT": {"vcpu_hour": 0.012144, "gb_hour": 0.0013335},
        }
    )
)
T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def usage(provider: str, seconds: float, *, interrupted: bool = False, attempt: int = 1) -> dict[str, object]:
    return attempt_usage(
        attempt=attempt,
        cpu=2048,
        memory=4096,
        provider=provider,
        started=T0,
        stopped=T0 + timedelta(seconds=seconds),
        interrupted=interrupted,
    )


def test_usage_bills_per_second_with_a_one_minute_minimum() -> None:
    assert usage("FARGATE", 1000.2)["seconds"] == 1001
    assert usage("FARGATE", 30) == {
        "attempt": 1,
        "capacity_provider": "FARGATE",
        "seconds": 60,
        "vcpu_seconds": 120.0,
        "gb_seconds": 240.0,
        "interrupted": False,
    }
    never = attempt_usage(attempt=1, cpu=1024, memory=2048, provider=None, started=None, stopped=T0, interrupted=False)
    assert never["seconds"] == 0 and never["capacity_provider"] == "unknown"


def test_interrupted_spot_attempt_then_on_demand() -> None:
    # 2 vCPU / 4 GB. Attempt 1: 1000 s on Spot, interrupted; attempt 2: 30 s (billed 60) on FARGATE.
    # spot:      (2000 * 0.012144 + 4000 * 0.0013335) / 3600 = 29.622 / 3600 = 0.0082283
    # on-demand: (120 * 0.04048 + 240 * 0.004445) / 3600     = 5.9244 / 3600 = 0.0016457
    # all on FARGATE: (2000 * 0.04048 + 4000 * 0.004445) / 3600 + 0.0016457 = 0.0274278 + 0.0016457
    cost = job_cost([usage("FARGATE_SPOT", 1000, interrupted=True), usage("FARGATE", 30, attempt=2)], PRICES)
    assert cost["cost_usd"] == pytest.approx(0.009874, abs=1e-6)
    assert cost["on_demand_cost_usd"] == pytest.approx(0.0290734, abs=1e-6)
    assert cost["saving_usd"] == pytest.approx(0.0191994, abs=1e-6)
    assert cost["interrupted_cost_usd"] == pytest.approx(0.0082283, abs=1e-6)
    assert cost["interrupted_vcpu_seconds"] == 2000 and cost["vcpu_seconds"] == 2120
    assert "unpriced_attempts" not in cost


def test_unpriced_provider_counts_usage_not_dollars() -> None:
    cost = job_cost([usage("gpu-spot", 100)], PRICES)
    assert cost["unpriced_attempts"] == 1 and cost["cost_usd"] == 0 and cost["vcpu_seconds"] == 200


def test_record_fields_append_and_price_the_usage_so_far() -> None:
    first = record_fields([], usage("FARGATE_SPOT", 100, interrupted=True), PRICES)
    assert len(first["usage"]) == 1 and first["cost_usd"] == first["interrupted_cost_usd"] > 0  # a job ended
    # while RETRYING keeps this cost
    last = record_fields(first["usage"], usage("FARGATE", 100, attempt=2), PRICES)
    assert [u["attempt"] for u in last["usage"]] == [1, 2]
    assert last["cost_usd"] == pytest.approx(first["cost_usd"] + job_cost([usage("FARGATE", 100)], PRICES)["cost_usd"])
    assert "cost_usd" not in record_fields([], usage("FARGATE", 100), None)


def test_sweep_sum_and_metric_line() -> None:
    totals = sum_costs([{"cost_usd": 0.5, "saving_usd": 0.25}, {"cost_usd": 0.25}, {}])
    assert totals["cost_usd"] == 0.75 and totals["saving_usd"] == 0.25
    line = json.loads(emf_line(at=T0, job_id="j", state="SUCCEEDED", queue="dispatch", cost=totals, parent_id="p"))
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "TrainingAutoscaler"
    assert line["JobCostUSD"] == 0.75 and line["parent_id"] == "p" and line["_aws"]["Timestamp"] == 1795608000000


def test_a_sweeps_totals_include_every_usage_total() -> None:
    children = [
        {"vcpu_seconds": 120.0, "gb_seconds": 240.0, "interrupted_vcpu_seconds": 60.0},
        {"vcpu_seconds": 60.0, "gb_seconds": 120.5},
    ]
    totals = sum_costs(children)
    assert (totals["vcpu_seconds"], totals["gb_seconds"], totals["interrupted_vcpu_seconds"]) == (180.0, 360.5, 60.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"FARGATE_SPOT": {"vcpu_hour": 1, "gb_hour": 1}}', "at least a 'FARGATE' entry"),
        ('{"FARGATE": {"vcpu_hour": -1, "gb_hour": 1}}', "FARGATE: needs vcpu_hour and gb_hour"),
        ('{"FARGATE": {"vcpu_hour": true, "gb_hour": 1}}', "FARGATE: needs vcpu_hour and gb_hour"),
    ],
)
def test_bad_price_tables_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_prices(text)
