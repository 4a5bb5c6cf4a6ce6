"""Why is my job waiting, a sweep's progress, and a job's cost, as trainctl prints them.

`explain` is pure: it turns what the system knows (the job record, its queue's depth, the worker service, a
sweep's parent) into the concrete reason a job is not running. `gather` makes the few AWS calls it needs.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from aws.job_store import DynamoJobStore
from jobs import waiting
from jobs.errors import JobSpecInvalid
from jobs.gang import gang_tasks
from jobs.jobspec import JobSpec, parse_job_spec
from jobs.record import JobRecord
from jobs.states import JobState
from jobs.timeutil import iso, parse_iso
from lifecycle import parents as arrays
from trainctl.errors import aws_call
from trainctl.resources import Session

NEXT_TRY = re.compile(r" \(next try in (\d+) s\)$")


@dataclass(frozen=True)
class Queue:
    visible: int
    delayed: int
    in_flight: int


@dataclass(frozen=True)
class Workers:
    desired: int
    running: int
    pending: int
    pending_since: str | None = None


@dataclass(frozen=True)
class Facts:
    job_id: str
    now: datetime
    record: JobRecord | None
    queue: Queue | None = None
    workers: Workers | None = None
    parent: JobRecord | None = None
    progress: arrays.Progress | None = None
    ranks: tuple[str | None, ...] | None = None
    """A dispatched gang: each rank task's lastStatus from DescribeTasks (None: not found), index = rank."""


def spec_of(record: JobRecord) -> JobSpec | None:
    if not record.spec:
        return None
    with contextlib.suppress(JobSpecInvalid):
        return parse_job_spec(record.spec)
    return None


def explain(facts: Facts) -> list[str]:
    """The reason first, then what happens next (deadlines), one line each."""
    record = facts.record
    if record is None:
        parent = facts.parent
        if parent is not None:
            return [
                f"waiting for its parent: {parent.job_id} has enqueued {arrays.enqueued(parent)} of "
                f"{arrays.size(parent)} children ({parent.state}); this one is not created yet"
            ]
        return [f"job {facts.job_id!r} not found"]
    if facts.progress is not None:
        return [f"{record.state}: {facts.progress.summary()}"]
    if record.state == JobState.REJECTED:
        return [f"rejected: {record.reason}"]
    if record.terminal:
        return [f"{record.state}: {record.reason or 'no reason recorded'}"]
    if record.state == JobState.RUNNING:
        return [f"running since {record.started_at} (attempt {record.attempt})"]
    if record.state == JobState.DISPATCHED:
        where = f"on {record.capacity_provider} (launched {record.dispatched_at})"
        if len(gang_tasks(record.extra)) > 1:
            return [f"waiting for its gang: {_gang_progress(record, facts.ranks)} {where}"]
        return [f"its task is starting {where}"]
    lines = [_waiting_reason(facts, record)]
    if record.cancel_requested:
        lines.insert(0, "cancel requested: it ends CANCELLED as soon as its consumer sees it")
    spec = spec_of(record)
    due = waiting.deadline(spec, record) if spec else None
    if spec is not None and spec.max_wait is not None and due is not None:
        what = "falls back to on-demand" if spec.max_wait.action == waiting.ON_DEMAND else "fails"
        lines.append(f"max_wait {spec.max_wait.seconds} s: {what} at {iso(due)} if not started by then")
    return lines


def _waiting_reason(facts: Facts, record: JobRecord) -> str:
    reason = (record.reason or "").removeprefix("waiting: ")
    next_try = NEXT_TRY.search(reason)
    when = ""
    if next_try and record.updated_at:
        at = parse_iso(record.updated_at) + timedelta(seconds=int(next_try.group(1)))
        reason, when = reason[: next_try.start()], f"; next try at {iso(at)}"
    if "concurrency cap reached" in reason:
        return f"{reason}{when}"
    if "throttled" in reason:
        return f"throttled: {reason}{when}"
    if "no capacity" in reason:
        spec = spec_of(record)
        fallback = waiting.fallback_at(spec, record) if spec else None
        plan = f"; on-demand fallback planned at {fallback}" if fallback else ""
        return f"capacity unavailable on Spot (last error: {reason}){when}{plan}"
    if record.state == JobState.RETRYING:
        return f"retrying: {record.reason}"
    return _queued(facts, record)


def _gang_progress(record: JobRecord, ranks: tuple[str | None, ...] | None) -> str:
    """`1 of 2 ranks running (rank 1 PENDING)`; without DescribeTasks, only the count the record knows."""
    nodes = len(gang_tasks(record.extra))
    if ranks is None:
        return f"{nodes} ranks starting"
    running = sum(status == "RUNNING" for status in ranks)
    others = ", ".join(
        f"rank {rank} {status or 'not found'}" for rank, status in enumerate(ranks) if status != "RUNNING"
    )
    return f"{running} of {nodes} ranks running" + (f" ({others})" if others else "")


def _queued(facts: Facts, record: JobRecord) -> str:
    queue = facts.queue
    depth = f"queued behind {queue.visible} message(s) on the {record.queue} queue" if queue else "queued"
    if queue and queue.delayed:
        depth += f" ({queue.delayed} delayed)"
    workers = facts.workers
    if record.queue != "worker" or workers is None:
        return depth
    if workers.desired == 0:
        return f"{depth}; scaling from zero: no worker yet (the scaler starts one on the backlog alarm)"
    if workers.pending:
        return f"{depth}; scaling from zero: {workers.pending} worker(s) starting since {workers.pending_since}"
    return f"{depth}; all {workers.running} worker(s) busy"


def cost_text(record: JobRecord) -> str | None:
    """`$0.0123 (saved $0.0250 vs on-demand; $0.0010 lost to interruptions)`, once the job has a cost."""
    extra = record.extra
    if not isinstance(extra.get("cost_usd"), int | float):
        return None
    text = f"${extra['cost_usd']:.4f} (saved ${extra.get('saving_usd', 0):.4f} vs on-demand"
    lost = extra.get("interrupted_cost_usd") or 0
    return text + (f"; ${lost:.4f} lost to interruptions)" if lost else ")")


def gather(session: Session, store: DynamoJobStore, job_id: str, now: datetime) -> Facts:
    """Read what `explain` needs: the record, its queue's depth, the worker service, a sweep's children."""
    record = aws_call("GetItem", store.get, job_id=job_id)
    parent = None
    if record is None:
        parent_id = job_id.rsplit("-", 1)[0]
        if "-" in job_id and job_id.rsplit("-", 1)[1].isdigit():
            parent = aws_call("GetItem", store.get, job_id=parent_id)
        return Facts(job_id, now, None, parent=parent if parent and arrays.is_parent(parent) else None)
    if arrays.is_parent(record):
        children = aws_call("BatchGetItem", arrays.children, store=store, parent=record)
        return Facts(job_id, now, record, progress=arrays.progress(record, children))
    if record.state == JobState.DISPATCHED and len(gang_tasks(record.extra)) > 1:
        return Facts(job_id, now, record, ranks=_rank_statuses(session, gang_tasks(record.extra)))
    if record.terminal or record.state not in (JobState.SUBMITTED, JobState.RETRYING):
        return Facts(job_id, now, record)
    queue = _queue(session, record.queue)
    workers = _workers(session) if record.queue == "worker" else None
    return Facts(job_id, now, record, queue=queue, workers=workers)


def _queue(session: Session, name: str | None) -> Queue | None:
    url = session.find({"worker": "worker_queue_url", "dispatch": "dispatch_queue_url"}.get(name or "", ""))
    if not url:
        return None
    attributes = aws_call(
        "GetQueueAttributes",
        session.client("sqs").get_queue_attributes,
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesDelayed",
            "ApproximateNumberOfMessagesNotVisible",
        ],
    )["Attributes"]
    return Queue(
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def _rank_statuses(session: Session, arns: tuple[str, ...]) -> tuple[str | None, ...] | None:
    """Each rank task's lastStatus (one DescribeTasks: nodes is bounded well below its 100 tasks)."""
    cluster = session.find("cluster")
    if not cluster:
        return None
    ecs = session.client("ecs")
    found = aws_call("DescribeTasks", ecs.describe_tasks, cluster=cluster, tasks=list(arns[:100])).get("tasks", [])
    status = {task["taskArn"]: task.get("lastStatus") for task in found}
    return tuple(status.get(arn) for arn in arns)


def _workers(session: Session) -> Workers | None:
    cluster, service = session.find("cluster"), session.find("worker_service")
    if not cluster or not service:
        return None
    ecs = session.client("ecs")
    found = aws_call("DescribeServices", ecs.describe_services, cluster=cluster, services=[service]).get("services")
    if not found:
        return None
    desired, running, pending = (int(found[0].get(k, 0)) for k in ("desiredCount", "runningCount", "pendingCount"))
    since = None
    if pending:
        arns = aws_call("ListTasks", ecs.list_tasks, cluster=cluster, serviceName=service).get("taskArns", [])
        tasks = aws_call("DescribeTasks", ecs.describe_tasks, cluster=cluster, tasks=arns[:100]) if arns else {}
        starting = [t["createdAt"] for t in tasks.get("tasks", []) if t.get("lastStatus") != "RUNNING"]
        since = iso(min(starting)) if starting and isinstance(min(starting), datetime) else None
    return Workers(desired, running, pending, since)
