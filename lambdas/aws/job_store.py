"""DynamoJobStore: the jobs-table adapter of lifecycle.ports.JobStore. Every state change is a DynamoDB
conditional write; what each write changes and requires is jobs.record_writes (the item layout is there too).

The store takes a low-level boto3 DynamoDB client (anything with put_item / update_item / get_item / query /
batch_get_item), so the Lambdas, the worker and the CLI share it. It never reads the clock: callers pass `now`.
Attribute values are encoded with boto3's TypeSerializer / TypeDeserializer, imported on first use: importing
`boto3.dynamodb.types` imports boto3 itself, about 250 ms cold (``python -X importtime``), which the handlers'
import budget cannot pay at module import (by the first store call, the client has imported boto3 anyway).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, assert_never

from aws.dynamo_update import UpdateExpression
from contracts import STATE_INDEX, TABLE_PARTITION_KEY
from jobs import record_writes as writes
from jobs.errors import JobStateConflict
from jobs.record import JobRecord
from jobs.record_writes import HISTORY, Write, record_from_item
from jobs.states import JobState


class DynamoDBClient(Protocol):
    def put_item(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def update_item(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def get_item(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def query(self, **kwargs: Any) -> Mapping[str, Any]: ...
    def batch_get_item(self, **kwargs: Any) -> Mapping[str, Any]: ...


# --- attribute values ---------------------------------------------------------------------------


@functools.cache
def _codec() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def encode(value: Any) -> dict[str, Any]:
    """The attribute value of a plain value (str, int, float, bool, None, list/tuple, mapping)."""
    serialized: dict[str, Any] = _codec()[0].serialize(_with_decimals(value))
    return serialized


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """An item's plain values. A number comes back as an int when DynamoDB wrote it as one (no fraction, no
    exponent), else as a float, as the values went in."""
    deserializer = _codec()[1]
    return {key: _plain(deserializer.deserialize(value)) for key, value in item.items()}


def _with_decimals(value: Any) -> Any:
    """TypeSerializer refuses floats: each goes in as the Decimal of its shortest repr."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {str(k): _with_decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_with_decimals(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value.as_tuple().exponent == 0 else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):  # string / number sets, which this store never writes
        return [_plain(v) for v in sorted(value)]
    return value


def _record(item: Mapping[str, Any]) -> JobRecord:
    return record_from_item(decode_item(item))


def _key(job_id: str) -> dict[str, Any]:
    return {TABLE_PARTITION_KEY: {"S": job_id}}


# --- errors --------------------------------------------------------------------------------------


def _is_conditional_failure(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return False
    return response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _old_item(exc: Exception) -> JobRecord | None:
    item = getattr(exc, "response", {}).get("Item")
    return _record(item) if item else None


class DynamoJobStore(writes.ConditionalUpdates):
    """DynamoDB adapter for job records. Methods raise JobStateConflict when a conditional write loses."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # -- reads -------------------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        response = self._client.get_item(TableName=self._table, Key=_key(job_id), ConsistentRead=True)
        item = response.get("Item")
        return _record(item) if item else None

    def query_state(
        self, state: JobState, *, updated_before: str | None = None, queue: str | None = None
    ) -> Iterator[JobRecord]:
        """Jobs in `state` (GSI by-state, oldest update first), optionally last updated before a timestamp.
        Items whose key holds a "#" are not jobs and are skipped."""
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
                if "#" not in item[TABLE_PARTITION_KEY]["S"]:
                    yield _record(item)
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def get_many(self, job_ids: Collection[str]) -> dict[str, JobRecord]:
        """Records by job id (BatchGetItem, 100 keys per call, consistent reads); missing ids are absent."""
        found: dict[str, JobRecord] = {}
        ids = list(dict.fromkeys(job_ids))
        for start in range(0, len(ids), 100):
            keys: dict[str, Any] = {
                self._table: {"Keys": [_key(i) for i in ids[start : start + 100]], "ConsistentRead": True}
            }
            while keys:
                response = self._client.batch_get_item(RequestItems=keys)
                for item in response.get("Responses", {}).get(self._table, []):
                    record = _record(item)
                    found[record.job_id] = record
                keys = dict(response.get("UnprocessedKeys") or {})
        return found

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
        item = writes.new_item(
            job_id,
            state=state,
            attempt=attempt,
            now=now,
            reason=reason,
            fields={"spec": spec, "queue": queue, **fields},
        )
        encoded = {k: encode(v) for k, v in item.items()}
        try:
            self._client.put_item(
                TableName=self._table,
                Item=encoded,
                ConditionExpression=f"attribute_not_exists({TABLE_PARTITION_KEY})",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if not _is_conditional_failure(exc):
                raise
            existing = _old_item(exc) or self.get(job_id)
            if existing is None:  # deleted in between: extremely unlikely, let the caller retry
                raise JobStateConflict(job_id, "an existing record", None) from None
            return False, existing
        return True, _record(encoded)

    def _apply(self, operation: str, job_id: str, write: Write) -> JobRecord:
        """One UpdateItem: the write's changes, on its conditions (`operation` names it for the fake's faults)."""
        try:
            response = self._client.update_item(**self._request(job_id, write))
        except Exception as exc:
            if _is_conditional_failure(exc):
                raise JobStateConflict(job_id, write.expected, _old_item(exc)) from None
            raise
        return _record(response["Attributes"])

    def _request(self, job_id: str, write: Write) -> dict[str, Any]:
        """UpdateItem arguments for `write`: the item must exist and meet every condition."""
        update = UpdateExpression()
        for attr, value in write.changes.items():
            if value is None:
                update.remove(attr)
            else:
                update.set(attr, value)
        if write.history is not None:
            update.append(HISTORY, [dict(write.history)])
        if write.increment is not None:
            update.add(*write.increment)
        update.require_exists(TABLE_PARTITION_KEY)
        for condition in write.conditions:
            match condition.test:
                case "equals":
                    update.require_equal(condition.attr, condition.values[0])
                case "in":
                    update.require_in(condition.attr, condition.values)
                case "absent":
                    update.require_absent(condition.attr)
                case "not_true":
                    update.require_not_true(condition.attr)
                case unknown:
                    assert_never(unknown)
        return {
            "TableName": self._table,
            "Key": _key(job_id),
            "UpdateExpression": update.update_expression,
            "ConditionExpression": update.condition_expression,
            "ExpressionAttributeNames": update.names,
            "ExpressionAttributeValues": {k: encode(v) for k, v in update.values.items()},
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
