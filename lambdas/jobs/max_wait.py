"""The JobSpec's ``max_wait`` block (pure): how long a job may wait to start, then ON_DEMAND or FAIL.

What a deadline means for a waiting job is jobs.waiting."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobs.errors import FieldError
from jobs.retry_rules import UpperCase

OnMaxWait = Annotated[Literal["ON_DEMAND", "FAIL"], UpperCase]
ON_DEMAND: OnMaxWait = "ON_DEMAND"
FAIL: OnMaxWait = "FAIL"


class MaxWait(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    seconds: Annotated[int, Field(ge=60, le=14 * 86400)]
    action: OnMaxWait = FAIL


def max_wait_errors(values: Mapping[str, Any], invalid: Collection[str]) -> list[FieldError]:
    """ON_DEMAND needs a dedicated Spot job (worker-queue jobs run on the worker service's capacity)."""
    max_wait = values.get("max_wait")
    action = max_wait.action if isinstance(max_wait, MaxWait) else None
    if isinstance(max_wait, Mapping):
        action = max_wait.get("action", FAIL)
    if any(f.startswith("max_wait") for f in invalid) or str(action).upper() != ON_DEMAND:
        return []
    if values.get("dedicated") is not True:
        return [FieldError("max_wait.action", "ON_DEMAND needs dedicated: true (worker-queue jobs use the workers)")]
    if values.get("spot") is False or values.get("gpu"):
        return [FieldError("max_wait.action", "ON_DEMAND applies to Spot Fargate jobs only (spot: true, no gpu)")]
    return []
