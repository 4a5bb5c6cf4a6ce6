"""The default Fargate price table (USD, Linux/x86), per region and capacity provider, and its check.

Sources (docs/aws-facts.md §5, gathered 2026-11-25):
- FARGATE us-east-1: $0.04048 per vCPU-hour, $0.004445 per GB-hour (vantage.sh/blog/fargate-pricing; the same
  x86 rates in cloudburn.io and wring.co, 2026-03).
- FARGATE_SPOT: AWS publishes a dynamic rate, "up to 70%" below on-demand (aws.amazon.com/fargate/pricing); no
  current us-east-1 figure was found, so the default is 0.30 x on-demand, the benchmark's assumption. Replace it
  with your region's rate: `-c 'autoscaler.fargate_prices={"eu-west-1": {...}}'` or cdk.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROVIDERS = ("FARGATE", "FARGATE_SPOT")
SPOT_FRACTION = 0.30
ON_DEMAND_US_EAST_1 = {"vcpu_hour": 0.04048, "gb_hour": 0.004445}

DEFAULT_PRICES: dict[str, dict[str, dict[str, float]]] = {
    "us-east-1": {
        "FARGATE": ON_DEMAND_US_EAST_1,
        "FARGATE_SPOT": {k: round(v * SPOT_FRACTION, 7) for k, v in ON_DEMAND_US_EAST_1.items()},
    }
}


def price_table_problem(table: Any, region: str) -> str | None:
    """Why `table` is not a usable price table for `region` (None when it is)."""
    if not isinstance(table, Mapping):
        return "expected an object {region: {FARGATE: {vcpu_hour, gb_hour}, FARGATE_SPOT: {...}}}"
    if region not in table:
        return f"no prices for region {region} (have: {', '.join(sorted(table)) or 'none'}); add them"
    for name, rates in table.items():
        if not isinstance(rates, Mapping) or sorted(rates) != sorted(PROVIDERS):
            return f"{name}: needs exactly {' and '.join(PROVIDERS)}"
        for provider, rate in rates.items():
            values = [rate.get(k) if isinstance(rate, Mapping) else None for k in ("vcpu_hour", "gb_hour")]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values):
                return f"{name}.{provider}: needs vcpu_hour and gb_hour as numbers >= 0"
    return None
