"""One dispatch-queue message: validate it, then reject it, fan it out (an array job or sweep), or dispatch its job.

Dispatching records the job (taking the launch claim on the create when there is room; the crash-safety ordering
is described in lifecycle.launch), then acts on the record as lifecycle.dispatch_rules decides: skip, defer,
cancel or expire a waiting job, or claim and launch it (lifecycle.launch).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import DISPATCH_QUEUE
from jobs.errors import JobSpecInvalid, JobStateConflict
from jobs.jobspec import derive_job_id, parse_job_spec
from jobs.messages import read_dispatch_attributes
from jobs.record import NO_CLAIM, JobRecord, clip_reason
from jobs.states import JobState
from jobs.timeutil import iso
from lifecycle.cancel import end_waiting
from lifecycle.capacity import Capacity
from lifecycle.dispatch_rules import (
    CancelWaiting,
    Decision,
    Defer,
    Expire,
    Outcome,
    Skip,
    after_lost_claim,
    decide,
    deferred_reason,
)
from lifecycle.fanout import fan_out, is_parent_spec
from lifecycle.launch import Delivery, DispatchConfig, Launcher
from lifecycle.launch_plan import LaunchPlan, OverridesTooLarge, plan_for_record, plan_launch
from lifecycle.ports import Ports
from lifecycle.reject import reject
from lifecycle.run_tasks import stop_started_by

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    message_id: str
    body: str
    attributes: Mapping[str, Mapping[str, Any]]

    @classmethod
    def from_sqs_record(cls, record: Mapping[str, Any]) -> Message:
        """From one record of an SQS Lambda event (`messageId`, `body`, `messageAttributes`)."""
        return cls(
            message_id=str(record["messageId"]),
            body=str(record.get("body") or ""),
            attributes=record.get("messageAttributes") or {},
        )


class Submitter:
    """Handles the messages of one SQS batch (the ListTasks count is shared by the batch). A launch claim is
    `<claim_prefix>:<message id>` (the Lambda request id as the prefix)."""

    def __init__(self, ports: Ports, config: DispatchConfig, *, claim_prefix: str) -> None:
        self._ports = ports
        self._config = config
        self._claim_prefix = claim_prefix
        self._capacity = Capacity(ports.ecs, config.task_families, config.max_concurrent_tasks)
        self._launcher = Launcher(ports, config, self._capacity)

    def handle(self, message: Message) -> Outcome:
        try:
            meta = read_dispatch_attributes(message.attributes)
            spec = parse_job_spec(message.body, self._config.deployment)
        except JobSpecInvalid as exc:
            return self._reject(message, str(exc), attempt=1)
        if spec.job_id is None:
            spec = spec.model_copy(update={"job_id": derive_job_id(message.message_id)})
        job_id = str(spec.job_id)
        if is_parent_spec(spec):  # an array job or sweep: enqueue its children (lifecycle.fanout)
            return fan_out(
                spec,
                store=self._ports.store,
                queues=self._ports.queues,
                clock=self._ports.clock,
                dispatch_queue_url=self._config.dispatch_queue_url,
                worker_queue_url=self._config.worker_queue_url,
                reject=lambda why: self._reject(message, why, attempt=1, job_id=job_id),
            )
        try:
            plan = plan_launch(
                spec, attempt=meta.attempt, prefer_on_demand=meta.prefer_on_demand, config=self._config.launch
            )
        except OverridesTooLarge as exc:
            return self._reject(message, f"invalid job spec: environment: {exc}", attempt=meta.attempt, job_id=job_id)
        return self._dispatch(Delivery(spec, meta, claim=f"{self._claim_prefix}:{message.message_id}"), plan)

    def _dispatch(self, delivery: Delivery, plan: LaunchPlan) -> Outcome:
        """Record the job (claimed on the create when there is room), then act on its record."""
        now = self._ports.clock()
        spec, meta, claim = delivery.spec, delivery.meta, delivery.claim
        room, room_reason = self._capacity.room(spec.nodes)
        created, job = self._ports.store.create_if_absent(
            delivery.job_id,
            state=JobState.SUBMITTED,
            attempt=meta.attempt,
            now=now,
            spec=spec.to_json(),
            queue=DISPATCH_QUEUE,
            reason=None if room else deferred_reason(room_reason, delivery.delay),
            launch_claim=claim if room else None,
            launch_claimed_at=iso(now) if room else None,
        )
        plan = plan_for_record(plan, spec, job, now, prefer_on_demand=meta.prefer_on_demand, config=self._config.launch)
        if created:
            if room:
                return self._launcher.launch(job, plan, delivery, takeover=False)
            return self._launcher.defer(job, delivery, room_reason, annotate=False)
        decision = decide(job=job, spec=spec, message_attempt=meta.attempt, now=now, room=room, room_reason=room_reason)
        return self._apply(decision, job, plan, delivery, now)

    def _apply(
        self, decision: Decision, job: JobRecord, plan: LaunchPlan, delivery: Delivery, now: datetime
    ) -> Outcome:
        """Carry out `decision` on the job's record; a Launch first takes the launch claim."""
        if isinstance(decision, Skip):
            log.info("duplicate or stale message skipped", extra={"job_id": job.job_id, "reason": decision.reason})
            return Outcome.SKIPPED
        if isinstance(decision, Defer):
            return self._launcher.defer(job, delivery, decision.reason)
        if isinstance(decision, CancelWaiting):
            return self._cancel(job, decision.reason)
        if isinstance(decision, Expire):
            return self._finish_waiting(job, JobState.FAILED, decision.reason)
        try:
            claimed = self._ports.store.claim_launch(
                job.job_id,
                state=job.state,
                attempt=job.attempt,
                claim=delivery.claim,
                now=now,
                takeover_from=decision.takeover,
            )
        except JobStateConflict as conflict:
            current = conflict.current
            after = after_lost_claim(current, now)
            if current is None or isinstance(after, Skip):
                log.info(
                    "lost the launch claim to another consumer", extra={"job_id": job.job_id, "current": str(conflict)}
                )
                return Outcome.SKIPPED
            return self._apply(after, current, plan, delivery, now)
        return self._launcher.launch(claimed, plan, delivery, takeover=decision.takeover is not None)

    def _cancel(self, job: JobRecord, reason: str) -> Outcome:
        if job.launch_claim is not None:  # an expired claim (decide): its lost launch may have started tasks
            stop_started_by(self._ports.ecs, job.job_id, "cancelled by user")
        return self._finish_waiting(job, JobState.CANCELLED, reason)

    def _finish_waiting(self, job: JobRecord, state: JobState, reason: str) -> Outcome:
        """End a job that never got a task (cancelled, or past its max_wait): its metric, its count on its parent."""
        try:
            # no launch began (or was taken over) since the read
            end_waiting(
                self._ports.store,
                job,
                self._ports.clock(),
                state=state,
                reason=reason,
                expected_claim=job.launch_claim or NO_CLAIM,
            )
        except JobStateConflict:
            return Outcome.SKIPPED
        return Outcome.CANCELLED if state == JobState.CANCELLED else Outcome.EXPIRED

    def _reject(self, message: Message, reason: str, *, attempt: int, job_id: str | None = None) -> Outcome:
        ports = self._ports
        job_id = reject(
            store=ports.store,
            queues=ports.queues,
            clock=ports.clock,
            dlq_url=self._config.dispatch_dlq_url,
            queue=DISPATCH_QUEUE,
            message_id=message.message_id,
            body=message.body,
            reason=reason,
            attempt=attempt,
            job_id=job_id,
        )
        log.warning("rejected", extra={"job_id": job_id, "reason": clip_reason(reason)})
        return Outcome.REJECTED
