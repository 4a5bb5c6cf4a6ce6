"""An in-memory job store (lifecycle.ports.JobStore) with DynamoJobStore's semantics.

Both stores run the same write descriptions (jobs.record_writes); tests/lifecycle/test_store_contract.py runs
one suite against both. Values are stored as DynamoDB would keep them (tuples come back as lists, mapping keys as
strings, only JSON-like types). Unlike DynamoDB, the by-state reads are strongly consistent.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from typing import Any

from fakes.faults import FaultInjection
from jobs import record_writes as writes
from jobs.errors import JobStateConflict
from jobs.record import JobRecord
from jobs.record_writes import HISTORY, Condition, Write, record_from_item
from jobs.states import JobState

_MISSING = object()


def _stored(value: Any) -> Any:
    """A deep copy of `value` as DynamoDB would give it back; TypeError for what it cannot hold."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError("Infinity and NaN not supported")
        return value
    if isinstance(value, Mapping):
        return {str(k): _stored(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stored(v) for v in value]
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def _same(stored: Any, expected: Any) -> bool:
    """DynamoDB's `=`: a boolean never equals a number."""
    return isinstance(stored, bool) is isinstance(expected, bool) and stored == expected


def _holds(condition: Condition, item: Mapping[str, Any]) -> bool:
    value = item.get(condition.attr, _MISSING)
    match condition.test:
        case "equals" | "in":
            return value is not _MISSING and any(_same(value, v) for v in condition.values)
        case "absent":
            return value is _MISSING
        case "not_true":
            return value is _MISSING or _same(value, False)


class InMemoryJobStore(FaultInjection, writes.ConditionalUpdates):
    """Job items in a dict. `inject("transition", fault)` (any method name) makes the next call raise the fault,
    or run it first (e.g. a competing writer's call)."""

    def __init__(self) -> None:
        super().__init__()
        self._items: dict[str, dict[str, Any]] = {}

    # -- reads -------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        self._fire("get")
        return self._record(job_id)

    def get_many(self, job_ids: Collection[str]) -> dict[str, JobRecord]:
        self._fire("get_many")
        return {i: record for i in dict.fromkeys(job_ids) if (record := self._record(i)) is not None}

    def query_state(
        self, state: JobState, *, updated_before: str | None = None, queue: str | None = None
    ) -> Iterator[JobRecord]:
        """Jobs in `state`, oldest update first (ties in creation order); keys holding "#" are skipped."""
        self._fire("query_state")
        found = [
            item
            for key, item in self._items.items()
            if item["state"] == state.value
            and "#" not in key
            and (updated_before is None or item["updated_at"] < updated_before)
            and (queue is None or item.get("queue") == queue)
        ]
        for item in sorted(found, key=lambda i: str(i["updated_at"])):
            yield record_from_item(_stored(item))

    # -- writes ------------------------------------------------------------------------------

    def create_if_absent(
        self,
        job_id: str,
        *,
        state: JobState,
        attempt: int,
        now: datetime,
        spec: str | None = None,
        queue: str | None = None,
        reason: str | None = None,
        **fields: Any,
    ) -> tuple[bool, JobRecord]:
        item = writes.new_item(
            job_id,
            state=state,
            attempt=attempt,
            now=now,
            reason=reason,
            fields={"spec": spec, "queue": queue, **fields},
        )
        self._fire("create_if_absent")
        created = job_id not in self._items
        if created:
            self._items[job_id] = _stored(item)
        return created, record_from_item(_stored(self._items[job_id]))

    def _record(self, job_id: str) -> JobRecord | None:
        item = self._items.get(job_id)
        return record_from_item(_stored(item)) if item is not None else None

    def _apply(self, operation: str, job_id: str, write: Write) -> JobRecord:
        self._fire(operation)
        item = self._items.get(job_id)
        if item is None or not all(_holds(c, item) for c in write.conditions):
            raise JobStateConflict(job_id, write.expected, self._record(job_id))
        updated = dict(item)
        for attr, value in write.changes.items():
            if value is None:
                updated.pop(attr, None)
            else:
                updated[attr] = _stored(value)
        if write.history is not None:
            updated[HISTORY] = [*updated.get(HISTORY, []), _stored(write.history)]
        if write.increment is not None:
            attr, amount = write.increment
            updated[attr] = updated.get(attr, 0) + amount
        self._items[job_id] = updated
        return record_from_item(_stored(updated))
