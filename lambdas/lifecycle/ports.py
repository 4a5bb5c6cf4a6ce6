"""The lifecycle's ports: what it needs from the world, as small Protocols (adapters in `aws`, fakes in tests).

Every method that writes a job is conditional: it raises JobStateConflict (carrying the record as it is now)
when the job is no longer where the caller last saw it, and never reads the clock (callers pass `now`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from jobs.record import JobRecord
from jobs.states import JobState

Clock = Callable[[], datetime]
"""The only clock: returns an aware UTC datetime (jobs.timeutil.utcnow in AWS, a virtual clock in tests)."""


class EcsPort(Protocol):
    """One cluster's tasks (aws.ecs.EcsAdapter). AWS error responses raise Throttled / TransientAwsError /
    RequestRejected (jobs.errors)."""

    def run_task(self, request: Mapping[str, Any]) -> Mapping[str, Any]: ...

    def stop_task(self, task_arn: str, reason: str) -> None: ...

    def describe_tasks(self, task_arns: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        """Task ARN -> DescribeTasks item for the tasks ECS still knows (at most 100 ARNs)."""
        ...

    def count_active(self, families: tuple[str, ...]) -> int:
        """Training tasks whose desired status is RUNNING (pending or running)."""
        ...

    def list_running_task_arns(self) -> list[str]: ...

    def list_started_by(self, started_by: str) -> list[str]:
        """ARNs of every task with desired status RUNNING started by `started_by` (the ranks of a gang)."""
        ...

    def find_task_started_by(self, started_by: str) -> tuple[str, str | None] | None:
        """(task ARN, capacity provider) of a task with desired status RUNNING started by `started_by`."""
        ...


class TaskStopper(Protocol):
    """Stops one task: what a cancel needs of ECS (EcsPort has it; trainctl brings its own)."""

    def stop_task(self, task_arn: str, reason: str) -> None: ...


class QueuePort(Protocol):
    """SQS (aws.sqs.SqsSender)."""

    def send(
        self, queue_url: str, body: str, attributes: Mapping[str, Mapping[str, str]], *, delay_seconds: int = 0
    ) -> str: ...

    def send_batch(self, queue_url: str, bodies: Sequence[tuple[str, str]]) -> None:
        """Up to 10 (entry id, body) pairs; raises TransientAwsError if SQS refused any entry."""
        ...


class JobStore(Protocol):
    """The jobs table (aws.job_store.DynamoJobStore in AWS)."""

    def get(self, job_id: str) -> JobRecord | None: ...

    def get_many(self, job_ids: Collection[str]) -> dict[str, JobRecord]: ...

    def query_state(
        self, state: JobState, *, updated_before: str | None = None, queue: str | None = None
    ) -> Iterator[JobRecord]:
        """Jobs in `state`, oldest update first, optionally last updated before a timestamp / on one queue."""
        ...

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
        """Create the record in an initial state unless one exists: (created, the record as stored now)."""
        ...

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
        """Move the job to `to` (a move jobs.states allows), appending to its history; `fields` None removes."""
        ...

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
        """Update the reason and fields without a state change (same conditions as a transition)."""
        ...

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
        """Take the launch lease for (job, attempt): unclaimed (or still holding `takeover_from`), no cancel."""
        ...

    def release_claim(
        self, job_id: str, *, state: JobState, attempt: int, claim: str, now: datetime, reason: str
    ) -> JobRecord: ...

    def request_cancel(self, job_id: str, *, now: datetime, reason: str = "cancel requested") -> JobRecord: ...

    def add_to(self, job_id: str, attr: str, amount: int, *, now: datetime) -> JobRecord:
        """Atomically add `amount` to a number attribute (created at 0)."""
        ...


@dataclass
class Ports:
    """The world as one invocation sees it (built by a function's wiring; fakes in tests)."""

    store: JobStore
    ecs: EcsPort
    queues: QueuePort
    clock: Clock
