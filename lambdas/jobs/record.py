"""The job record: what the jobs table holds for one job (pure; the store adapter reads and writes it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts import TABLE_PARTITION_KEY
from jobs.states import TERMINAL, JobState

MAX_REASON_CHARS = 1000
"""A job's `reason` is clipped to this length (it also travels as an SQS message attribute)."""

NO_CLAIM = ""
"""`expected_claim` meaning "the job holds no launch claim" (a real claim is never empty)."""


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    state: JobState
    attempt: int
    spec: str | None = None
    queue: str | None = None
    task_arn: str | None = None
    capacity_provider: str | None = None
    reason: str | None = None
    exit_code: int | None = None
    failures: int = 0
    interruptions: int = 0
    cancel_requested: bool = False
    launch_claim: str | None = None
    launch_claimed_at: str | None = None
    submitted_at: str | None = None
    dispatched_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    updated_at: str | None = None
    history: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @classmethod
    def from_values(cls, data: Mapping[str, Any]) -> JobRecord:
        """From a stored item's plain values; attributes without a field of their own go to `extra`."""
        data = {"attempt": 1, **data}
        known = {f for f in cls.__dataclass_fields__ if f not in ("extra", "history", "state")}
        values = {k: data[k] for k in known if k in data and data[k] is not None}
        extra = {k: v for k, v in data.items() if k not in known and k not in (TABLE_PARTITION_KEY, "history", "state")}
        return cls(
            state=JobState(data["state"]),
            history=tuple(data.get("history") or ()),
            extra=extra,
            **values,
        )


def clip_reason(text: str) -> str:
    """`text` cut to MAX_REASON_CHARS, with an ellipsis when cut."""
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."
