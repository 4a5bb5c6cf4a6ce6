"""Internal SQS message attributes (contract): `attempt` (Number, absent = 1), `prefer_on_demand` (String
"true"), plus `deferrals` (Number: how many times the submitter put the message back with a delay).

Pure: builds attribute maps for SendMessage and reads them from either an SQS Lambda event record
(`stringValue` / `dataType` keys) or a ReceiveMessage result (`StringValue` / `DataType` keys)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobs.errors import FieldError, JobSpecInvalid

ATTEMPT = "attempt"
PREFER_ON_DEMAND = "prefer_on_demand"
DEFERRALS = "deferrals"
REASON = "reason"
JOB_ID = "job_id"
MAX_ATTEMPT_NUMBER = 1000


@dataclass(frozen=True)
class DispatchAttributes:
    attempt: int = 1
    prefer_on_demand: bool = False
    deferrals: int = 0


def _string_value(attribute: Mapping[str, Any]) -> str | None:
    value = attribute.get("stringValue", attribute.get("StringValue"))
    return value if isinstance(value, str) else None


def _number(attributes: Mapping[str, Mapping[str, Any]], name: str, default: int, maximum: int) -> int:
    attribute = attributes.get(name)
    if attribute is None:
        return default
    text = _string_value(attribute)
    try:
        value = int(text) if text is not None else None
    except ValueError:
        value = None
    if value is None or not 0 <= value <= maximum:
        raise JobSpecInvalid(
            [FieldError(f"messageAttributes.{name}", f"must be an integer 0..{maximum}, got {text!r}")]
        )
    return value


def read_dispatch_attributes(attributes: Mapping[str, Mapping[str, Any]] | None) -> DispatchAttributes:
    """Read the internal attributes; a malformed one raises JobSpecInvalid naming it."""
    attributes = attributes or {}
    attempt = _number(attributes, ATTEMPT, 1, MAX_ATTEMPT_NUMBER)
    if attempt < 1:
        raise JobSpecInvalid([FieldError(f"messageAttributes.{ATTEMPT}", "must be >= 1")])
    prefer = attributes.get(PREFER_ON_DEMAND)
    return DispatchAttributes(
        attempt=attempt,
        prefer_on_demand=prefer is not None and (_string_value(prefer) or "").lower() == "true",
        deferrals=_number(attributes, DEFERRALS, 0, 10_000),
    )


def dispatch_attributes(
    *, attempt: int, prefer_on_demand: bool = False, deferrals: int = 0, **strings: str
) -> dict[str, dict[str, str]]:
    """MessageAttributes for SendMessage: internal attributes plus optional extra String attributes."""
    attributes: dict[str, dict[str, str]] = {ATTEMPT: {"DataType": "Number", "StringValue": str(attempt)}}
    if prefer_on_demand:
        attributes[PREFER_ON_DEMAND] = {"DataType": "String", "StringValue": "true"}
    if deferrals:
        attributes[DEFERRALS] = {"DataType": "Number", "StringValue": str(deferrals)}
    for name, value in strings.items():
        if value:
            attributes[name] = {"DataType": "String", "StringValue": value}
    return attributes
