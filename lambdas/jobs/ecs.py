"""ECS facts shared by the submitter, the task-events handler and the worker (pure constants/helpers)."""

from __future__ import annotations

FARGATE = "FARGATE"
FARGATE_SPOT = "FARGATE_SPOT"


def is_capacity_reason(text: str | None) -> bool:
    """ECS reports capacity shortages only as text ("Capacity is unavailable at this time...", in RunTask
    `failures[].reason` or a stopped task's `stoppedReason`); there is no error code to match on."""
    return bool(text) and "capacity" in str(text).lower()
