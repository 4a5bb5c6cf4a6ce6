"""JobStore: the jobs-table adapter. Every state change is a DynamoDB conditional write.

Item layout (contract): pk = job_id; state, attempt, spec (JSON), queue, task_arn, capacity_provider, reason,
exit_code, submitted_at / dispatched_at / started_at / finished_at / updated_at (ISO-8601 UTC), history (list of
{at, from, to, reason}). Extra attributes used here: failures / interruptions (retry budgets), cancel_requested,
launch_claim / launch_claimed_at (the submitter's launch lease, see `claim_launch`).

The store takes a low-level boto3 DynamoDB client (anything with put_item / update_item / get_item / query),
so the Lambdas, the worker and the CLI share it. It never reads the clock: callers pass `now`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

from contracts import STATE_INDEX, TABLE_PARTITION_KEY
from jobs.errors import InvalidTransition, JobStateConflict
from jobs.gang import RENDEZVOUS
from jobs.record import NO_CLAIM, JobRecord
from jobs.states import INITIAL, TERMINAL, JobState, can_transition
from jobs.timeutil import iso


class DynamoDBClient(Protocol):
    def put_item(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def update_item(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def get_item(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def query(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def batch_get_item(self, **kwargs: Any) -> Mapping[str, Any]: ...


# --- a tiny DynamoDB attribute-value codec (str, int, float, bool, None, list, dict) ---------------


def to_attr(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {str(k): to_attr(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in DynamoDB")


def from_attr(attr: Mapping[str, Any]) -> Any:
    (kind, value), *_ = attr.items()
    if kind == "S":
        return value
    if kind == "N":
        number = float(value)
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attr(v) for k, v in value.items()}
    if kind == "L":
        return [from_attr(v) for v in value]
    if kind == "SS":
        return list(value)
    raise TypeError(f"unsupported DynamoDB type {kind}")


def record_from_item(item: Mapping[str, Any]) -> JobRecord:
    """A JobRecord from a DynamoDB item (attribute values)."""
    data = {k: from_attr(v) for k, v in item.items()}
    data.setdefault("job_id", data.get(TABLE_PARTITION_KEY))
    return JobRecord.from_values(data)


def _history_entry(now: str, from_state: str | None, to_state: JobState, reason: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"at": now, "from": from_state, "to": to_state.value}
    if reason:
        entry["reason"] = reason
    return entry


class _Update:
    """Builds an UpdateExpression with placeholder names/values."""

    def __init__(self) -> None:
        self.sets: list[str] = []
        self.removes: list[str] = []
        self.conditions: list[str] = []
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attr: str) -> str:
        key = f"#{attr}"
        self.names[key] = attr
        return key

    def value(self, value: Any) -> str:
        key = f":v{len(self.values)}"
        self.values[key] = to_attr(value)
        return key

    def set(self, attr: str, value: Any) -> None:
        if value is None:
            self.remove(attr)
        else:
            self.sets.append(f"{self.name(attr)} = {self.value(value)}")

    def remove(self, attr: str) -> None:
        self.removes.append(self.name(attr))

    def append_history(self, entry: Mapping[str, Any]) -> None:
        empty = self.value([])
        self.sets.append(
            f"{self.name('history')} = list_append(if_not_exists({self.name('history')}, {empty}), "
            f"{self.value([dict(entry)])})"
        )

    def expect_states(self, states: Collection[JobState]) -> None:
        placeholders = ", ".join(self.value(s.value) for s in states)
        self.conditions.append(f"{self.name('state')} IN ({placeholders})")

    def expect_equal(self, attr: str, value: Any) -> None:
        self.conditions.append(f"{self.name(attr)} = {self.value(value)}")

    def expect_absent(self, attr: str) -> None:
        self.conditions.append(f"attribute_not_exists({self.name(attr)})")

    def expect_not_true(self, attr: str) -> None:
        self.conditions.append(f"(attribute_not_exists({self.name(attr)}) OR {self.name(attr)} = {self.value(False)})")

    def request(self, table: str, job_id: str) -> dict[str, Any]:
        expression = ""
        if self.sets:
            expression += "SET " + ", ".join(self.sets)
        if self.removes:
            expression += " REMOVE " + ", ".join(self.removes)
        request: dict[str, Any] = {
            "TableName": table,
            "Key": {"pk": {"S": job_id}},
            "UpdateExpression": expression.strip(),
            "ConditionExpression": " AND ".join(["attribute_exists(pk)", *self.conditions]),
            "ExpressionAttributeNames": self.names,
            "ExpressionAttributeValues": self.values,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        return request


def _is_conditional_failure(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return False
    return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _old_item(exc: Exception) -> JobRecord | None:
    item = getattr(exc, "response", {}).get("Item")
    return record_from_item(item) if item else None


_STATE_TIMESTAMPS = {
    JobState.DISPATCHED: "dispatched_at",
    JobState.RUNNING: "started_at",
    JobState.SUCCEEDED: "finished_at",
    JobState.FAILED: "finished_at",
    JobState.CANCELLED: "finished_at",
    JobState.REJECTED: "finished_at",
}


class DynamoJobStore:
    """DynamoDB adapter for job records. Methods raise JobStateConflict when a conditional write loses."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- reads -------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        response = self._client.get_item(TableName=self._table, Key={"pk": {"S": job_id}}, ConsistentRead=True)
        item = response.get("Item")
        return record_from_item(item) if item else None

    def query_state(
        self, state: JobState, *, updated_before: str | None = None, queue: str | None = None
    ) -> Iterator[JobRecord]:
        """Jobs in `state` (GSI by-state, oldest update first), optionally last updated before a timestamp."""
        names = {"#state": "state"}
        values: dict[str, Any] = {":state": {"S": state.value}}
        key = "#state = :state"
        if updated_before is not None:
            names["#updated"] = "updated_at"
            values[":before"] = {"S": updated_before}
            key += " AND #updated < :before"
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": STATE_INDEX,
            "KeyConditionExpression": key,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if queue is not None:
            names["#queue"] = "queue"
            values[":queue"] = {"S": queue}
            request["FilterExpression"] = "#queue = :queue"
        while True:
            response = self._client.query(**request)
            for item in response.get("Items", []):
                if "#" not in from_attr(item["pk"]):
                    yield record_from_item(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

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
        """Put the job record unless one exists. Returns (created, record as stored now), in one call."""
        if state not in INITIAL:
            raise InvalidTransition(f"a job cannot be created in state {state}")
        stamp = iso(now)
        item: dict[str, Any] = {
            "pk": job_id,
            "job_id": job_id,
            "state": state.value,
            "attempt": attempt,
            "submitted_at": stamp,
            "updated_at": stamp,
            "history": [_history_entry(stamp, None, state, reason)],
        }
        if state in _STATE_TIMESTAMPS:
            item[_STATE_TIMESTAMPS[state]] = stamp
        for key, value in {"spec": spec, "queue": queue, "reason": reason, **fields}.items():
            if value is not None:
                item[key] = value
        try:
            self._client.put_item(
                TableName=self._table,
                Item={k: to_attr(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if not _is_conditional_failure(exc):
                raise
            existing = _old_item(exc) or self.get(job_id)
            if existing is None:  # deleted in between: extremely unlikely, let the caller retry
                raise JobStateConflict(job_id, "an existing record", None) from None
            return False, existing
        return True, record_from_item({k: to_attr(v) for k, v in item.items()})

    def transition(
        self,
        job_id: str,
        to: JobState,
        *,
        expected_states: JobState | Collection[JobState],
        expected_attempt: int,
        now: datetime,
        reason: str | None = None,
        expected_task_arn: str | None = None,
        expected_claim: str | None = None,
        **fields: Any,
    ) -> JobRecord:
        """Move the job to `to` if it is in one of `expected_states` at `expected_attempt` (and, when given,
        runs `expected_task_arn` / holds `expected_claim`; NO_CLAIM: holds none).
        Appends {at, from, to, reason} to history, stamps updated_at and the state's own timestamp, sets
        `fields` (None removes an attribute).
        Raises InvalidTransition for a move the state machine forbids, JobStateConflict when the write loses."""
        expected = (expected_states,) if isinstance(expected_states, JobState) else tuple(expected_states)
        if not expected:
            raise InvalidTransition("expected_states is empty")
        for state in expected:
            if not can_transition(state, to):
                raise InvalidTransition(f"{state} -> {to} is not allowed")
        stamp = iso(now)
        update = _Update()
        update.set("state", to.value)
        update.set("updated_at", stamp)
        if to in _STATE_TIMESTAMPS and _STATE_TIMESTAMPS[to] not in fields:
            update.set(_STATE_TIMESTAMPS[to], stamp)
        update.set("reason", reason)
        for key, value in fields.items():
            update.set(key, value)
        from_state = expected[0].value if len(expected) == 1 else "|".join(sorted(s.value for s in expected))
        update.append_history(_history_entry(stamp, from_state, to, reason))
        update.expect_states(expected)
        update.expect_equal("attempt", expected_attempt)
        if expected_task_arn is not None:
            update.expect_equal("task_arn", expected_task_arn)
        if expected_claim == NO_CLAIM:
            update.expect_absent("launch_claim")
        elif expected_claim is not None:
            update.expect_equal("launch_claim", expected_claim)
        return self._update(job_id, update, f"{'|'.join(expected)} attempt {expected_attempt}")

    def annotate(
        self,
        job_id: str,
        *,
        expected_states: JobState | Collection[JobState],
        expected_attempt: int,
        now: datetime,
        reason: str | None,
        expected_claim: str | None = None,
        **fields: Any,
    ) -> JobRecord:
        """Update the reason (and fields) without a state change and without growing history, e.g. "waiting:
        concurrency cap reached". Conditional on state and attempt like a transition."""
        expected = (expected_states,) if isinstance(expected_states, JobState) else tuple(expected_states)
        update = _Update()
        update.set("updated_at", iso(now))
        update.set("reason", reason)
        for key, value in fields.items():
            update.set(key, value)
        update.expect_states(expected)
        update.expect_equal("attempt", expected_attempt)
        if expected_claim is not None:
            update.expect_equal("launch_claim", expected_claim)
        return self._update(job_id, update, f"{'|'.join(expected)} attempt {expected_attempt}")

    def claim_launch(
        self,
        job_id: str,
        *,
        state: JobState,
        attempt: int,
        claim: str,
        now: datetime,
        takeover_from: str | None = None,
    ) -> JobRecord:
        """Take the launch lease for (job, attempt) before calling RunTask: only one consumer can hold it.

        Without `takeover_from` the job must be unclaimed; with it, the job must still hold that (expired)
        claim, so exactly one consumer recovers an abandoned launch. A cancel request blocks the claim. A gang's
        rendezvous is removed here, before the launch's rank 0 can publish (jobs.gang)."""
        update = _Update()
        update.set("launch_claim", claim)
        update.set("launch_claimed_at", iso(now))
        update.remove(RENDEZVOUS)  # before any RunTask: the launch's rank 0 may publish as soon as it runs
        update.set("updated_at", iso(now))
        update.expect_states((state,))
        update.expect_equal("attempt", attempt)
        update.expect_not_true("cancel_requested")
        if takeover_from is None:
            update.expect_absent("launch_claim")
        else:
            update.expect_equal("launch_claim", takeover_from)
        return self._update(job_id, update, f"{state} attempt {attempt} unclaimed")

    def release_claim(
        self, job_id: str, *, state: JobState, attempt: int, claim: str, now: datetime, reason: str
    ) -> JobRecord:
        """Give the lease back after a launch that certainly did not start a task (throttled, no capacity)."""
        update = _Update()
        update.remove("launch_claim")
        update.remove("launch_claimed_at")
        update.set("updated_at", iso(now))
        update.set("reason", reason)
        update.expect_states((state,))
        update.expect_equal("attempt", attempt)
        update.expect_equal("launch_claim", claim)
        return self._update(job_id, update, f"{state} attempt {attempt} claimed by {claim}")

    def request_cancel(self, job_id: str, *, now: datetime, reason: str = "cancel requested") -> JobRecord:
        """Flag a non-terminal job for cancellation (CLI). The caller then stops its task, if any; the
        task-events handler records CANCELLED when the task stops, the submitter for a job still waiting."""
        update = _Update()
        update.set("cancel_requested", True)
        update.set("updated_at", iso(now))
        update.set("reason", reason)
        non_terminal = [s for s in JobState if s not in TERMINAL]
        update.expect_states(non_terminal)
        return self._update(job_id, update, "a non-terminal state")

    def get_many(self, job_ids: Collection[str]) -> dict[str, JobRecord]:
        """Records by job id (BatchGetItem, 100 keys per call, consistent reads); missing ids are absent."""
        found: dict[str, JobRecord] = {}
        ids = list(dict.fromkeys(job_ids))
        for start in range(0, len(ids), 100):
            keys: dict[str, Any] = {
                self._table: {"Keys": [{"pk": {"S": i}} for i in ids[start : start + 100]], "ConsistentRead": True}
            }
            while keys:
                response = self._client.batch_get_item(RequestItems=keys)
                for item in response.get("Responses", {}).get(self._table, []):
                    record = record_from_item(item)
                    found[record.job_id] = record
                keys = dict(response.get("UnprocessedKeys") or {})
        return found

    def add_to(self, job_id: str, attr: str, amount: int, *, now: datetime) -> JobRecord:
        """Atomically add `amount` to a number attribute (created at 0) of an existing job."""
        update = _Update()
        update.set("updated_at", iso(now))
        update.sets.append(
            f"{update.name(attr)} = if_not_exists({update.name(attr)}, {update.value(0)}) + {update.value(amount)}"
        )
        return self._update(job_id, update, "an existing job")

    def _update(self, job_id: str, update: _Update, expected: str) -> JobRecord:
        try:
            response = self._client.update_item(**update.request(self._table, job_id))
        except Exception as exc:
            if _is_conditional_failure(exc):
                raise JobStateConflict(job_id, expected, _old_item(exc)) from None
            raise
        return record_from_item(response["Attributes"])
