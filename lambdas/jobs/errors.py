"""Typed domain exceptions. Callers match on these types, never on message text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.record import JobRecord


class TrainingError(Exception):
    """Base class of every domain error in this project."""


class ConfigError(TrainingError):
    """A missing or invalid environment variable; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a job spec (`field` is a dotted path, "body" for the whole document)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class JobSpecInvalid(TrainingError):
    """A job spec failed validation; `errors` lists every problem, each naming its field."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__("invalid job spec: " + "; ".join(str(e) for e in self.errors))

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(e.field for e in self.errors)


class InvalidTransition(TrainingError, ValueError):
    """A transition the state machine forbids (a programming error, never a race)."""


class JobStateConflict(TrainingError):
    """A conditional write lost: the job is no longer in the expected state/attempt/task.

    `current` is the record as it is now (None when the item does not exist).
    """

    def __init__(self, job_id: str, expected: str, current: JobRecord | None) -> None:
        now = "missing" if current is None else f"{current.state} attempt {current.attempt}"
        super().__init__(f"job {job_id!r}: expected {expected}, found {now}")
        self.job_id = job_id
        self.current = current


class AwsCallError(TrainingError):
    """An AWS call failed; `code` is botocore's `Error.Code` (or the exception class name)."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code
        self.detail = message


class Throttled(AwsCallError):
    """Throttling that outlived botocore's own retries: back off and try later."""


class TransientAwsError(AwsCallError):
    """A server-side (5xx) or network error that outlived botocore's retries: try later."""


class RequestRejected(AwsCallError):
    """AWS refused the request (4xx other than throttling): retrying the same request will not help."""


class QueueNotFound(RequestRejected):
    """The SQS queue a request names does not exist (or the caller may not see it)."""


class ServiceNotFound(RequestRejected):
    """The ECS service or its cluster does not exist, or the service is not ACTIVE."""
