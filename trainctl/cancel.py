"""`trainctl cancel`: the lifecycle's cancel (lifecycle.cancel), with trainctl's StopTask, said in one line."""

from __future__ import annotations

from typing import IO, Any

from jobs.errors import JobStateConflict
from jobs.timeutil import utcnow
from lifecycle import cancel as lifecycle
from lifecycle.cancel import JobCancel, ParentCancel, Step
from trainctl.errors import EXIT_OK, TrainctlError, aws_call
from trainctl.output import emit_metric, print_json
from trainctl.resources import Session


class EcsTasks:
    """StopTask on the deployment's cluster (lifecycle.ports.TaskStopper), errors as trainctl errors."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def stop_task(self, task_arn: str, reason: str) -> None:
        ecs, cluster = self._session.client("ecs"), self._session.get("cluster")
        aws_call("StopTask", ecs.stop_task, cluster=cluster, task=task_arn, reason=reason)


def cancel(session: Session, args: Any, out: IO[str]) -> int:
    try:
        done = aws_call(
            "UpdateItem",
            lifecycle.cancel,
            store=session.jobs(),
            job_id=args.job_id,
            now=utcnow(),
            tasks=EcsTasks(session),
            by="trainctl",
            emit=emit_metric,
        )
    except JobStateConflict as conflict:
        if conflict.current is None:
            raise TrainctlError(f"job {args.job_id!r} not found") from None
        raise TrainctlError(f"job {args.job_id} is already {conflict.current.state}: nothing to cancel") from None
    if isinstance(done, ParentCancel):
        out.write(
            f"{done.parent.job_id}: {done.cancelled} waiting child(ren) cancelled, {done.stopping} running "
            f"child(ren) stopping; parent {done.parent.state}\n"
        )
        return EXIT_OK
    record, action = done.record, _action(done)
    if args.json:
        print_json(out, {"job_id": record.job_id, "state": record.state.value, "action": action})
    else:
        out.write(f"{record.job_id}: {action}\n")
    return EXIT_OK


def _action(done: JobCancel) -> str:
    record = done.record
    return {
        Step.CANCELLED: "cancelled before it started",
        Step.STARTED: f"it started meanwhile ({record.state}); its {record.queue or ''} consumer stops it",
        Step.STOPPING_TASK: f"stopping task {record.task_arn}; the job becomes CANCELLED when it stops",
        Step.WORKER_STOPS: "the worker running it stops it at its next heartbeat; the job then becomes CANCELLED",
        Step.LAUNCHING: "a launch is in progress; its task is stopped as soon as it is recorded",
    }[done.step]
