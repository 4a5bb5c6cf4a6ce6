"""`trainctl status`, `list` and `explain`: a job (or a sweep's progress), the jobs table, why a job waits."""

from __future__ import annotations

import contextlib
import json
import shlex
from typing import IO, Any

from jobs.record import JobRecord
from jobs.states import TERMINAL, JobState
from jobs.timeutil import utcnow
from lifecycle import parents as arrays
from trainctl import follow
from trainctl.errors import EXIT_OK, TrainctlError, aws_call
from trainctl.explain import Facts, cost_text, explain, gather
from trainctl.output import print_json, record_json, table
from trainctl.resources import Session


def status(session: Session, args: Any, out: IO[str]) -> int:
    record = session.job(args.job_id)
    if args.wait:  # exit code says whether it SUCCEEDED
        return follow.wait(session, args, out, [record.job_id])
    facts = gather(session, session.jobs(), record.job_id, utcnow())
    if args.json:
        print_json(out, {**record_json(record), "why": explain(facts)})
        return EXIT_OK
    command = ""
    if record.spec:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            command = shlex.join(json.loads(record.spec)["command"])
    rows = [
        ("job", record.job_id),
        ("state", record.state.value),
        ("attempt", f"{record.attempt} (failures {record.failures}, interruptions {record.interruptions})"),
        ("queue", record.queue),
        ("reason", record.reason),
        ("exit code", record.exit_code),
        ("task", record.task_arn),
        ("capacity", record.capacity_provider),
        ("command", command),
        ("submitted", record.submitted_at),
        ("started", record.started_at),
        ("finished", record.finished_at),
        ("cancel", "requested" if record.cancel_requested and not record.terminal else None),
    ]
    for label, value in rows:
        if value not in (None, ""):
            out.write(f"{label:<10} {value}\n")
    out.writelines(status_lines(facts))
    out.write("history\n")
    for entry in record.history:
        move = f"{entry.get('from') or '-'} -> {entry.get('to')}"
        why = f"  {entry['reason']}" if entry.get("reason") else ""
        out.write(f"  {entry.get('at')}  {move}{why}\n")
    return EXIT_OK


def status_lines(facts: Facts) -> list[str]:
    """Extra `trainctl status` lines: a parent's progress bar and summed cost, a job's cost, why it waits."""
    record = facts.record
    assert record is not None
    lines = []
    if facts.progress is not None:
        lines.append(f"{'children':<10} {facts.progress.bar()}  {facts.progress.summary()}")
        total = facts.progress.cost
        lines.append(f"{'cost':<10} ${total['cost_usd']:.4f} in total (saved ${total['saving_usd']:.4f} vs on-demand)")
    elif (cost := cost_text(record)) is not None:
        lines.append(f"{'cost':<10} {cost}")
    if facts.progress is None and record.state not in (JobState.RUNNING, *TERMINAL):
        lines.extend(f"{'why' if i == 0 else '':<10} {line}" for i, line in enumerate(explain(facts)))
    return [line + "\n" for line in lines]


def explain_job(session: Session, args: Any, out: IO[str]) -> int:
    facts = gather(session, session.jobs(), args.job_id, utcnow())
    if facts.record is None and facts.parent is None:
        raise TrainctlError(f"job {args.job_id!r} not found")
    why = explain(facts)
    if args.json:
        print_json(out, {"job_id": args.job_id, "state": facts.record and facts.record.state.value, "why": why})
    else:
        out.write("".join(f"{line}\n" for line in why))
    return EXIT_OK


def list_jobs(session: Session, args: Any, out: IO[str]) -> int:
    store = session.jobs()
    states = [JobState(args.state)] if args.state else list(JobState)
    records: list[JobRecord] = []
    if args.parent:  # in index order
        records = [r for r in children_of(session, args.parent) if r.state in states]
    else:
        for state in states:
            records.extend(aws_call("Query", lambda s=state: list(store.query_state(s))))
        records.sort(key=lambda r: r.updated_at or "", reverse=True)
    records = records[: max(0, args.limit)]
    if args.json:
        print_json(out, [record_json(r) for r in records])
        return EXIT_OK
    rows = [
        [
            r.job_id,
            r.state.value,
            str(r.attempt),
            r.queue or "",
            (r.updated_at or "")[:19].replace("T", " "),
            f"{r.extra['cost_usd']:.4f}" if isinstance(r.extra.get("cost_usd"), int | float) else "",
            r.reason or "",
        ]
        for r in records
    ]
    table(rows, ["JOB ID", "STATE", "ATTEMPT", "QUEUE", "UPDATED (UTC)", "COST ($)", "REASON"], out)
    return EXIT_OK


def children_of(session: Session, parent_id: str) -> list[JobRecord]:
    """The children of an array job or sweep, in index order."""
    parent = session.job(parent_id)
    if not arrays.is_parent(parent):
        raise TrainctlError(f"job {parent_id} is not an array job or sweep: it has no children")
    return list(aws_call("BatchGetItem", arrays.children, store=session.jobs(), parent=parent))
