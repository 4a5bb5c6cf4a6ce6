"""trainctl's commands. Each takes the Session, the parsed options and stdout; returns the exit code."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aws.job_store import DynamoJobStore
from jobs.children import expand, size_of
from jobs.errors import FieldError, JobSpecInvalid, JobStateConflict
from jobs.jobspec import JobSpec, derive_job_id, guess_job_id, parse_job_spec
from jobs.messages import JOB_ID, REASON
from jobs.record import JobRecord
from jobs.states import ACTIVE, WAITING, JobState
from jobs.timeutil import utcnow
from lifecycle.parents import is_parent, on_child_finished
from trainctl.errors import TrainctlError, aws_call
from trainctl.explain import explain, gather
from trainctl.resources import Session
from trainctl.sweeps import cancel_children, children_of, parent_fields, status_lines

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
QUEUES = {"worker": ("worker_queue_url", "worker_dlq_url"), "dispatch": ("dispatch_queue_url", "dispatch_dlq_url")}
INTERNAL_ATTRIBUTES = {REASON, JOB_ID, "source_message_id", "deferrals"}
# Log stream layout of the CDK task definitions (awslogs: <prefix>/<container>/<task id>), used when ECS no
# longer describes a stopped task (about an hour after it stopped).
FALLBACK_STREAMS = {"worker": ("worker_log_group", "worker/worker"), "dispatch": ("training_log_group", "job/trainer")}

sleep = time.sleep  # tests replace it to advance the system between polls


def _store(session: Session) -> DynamoJobStore:
    return DynamoJobStore(session.client("dynamodb"), session.get("jobs_table"))


def _get(session: Session, job_id: str) -> JobRecord:
    record = aws_call("GetItem", _store(session).get, job_id=job_id)
    if record is None:
        raise TrainctlError(f"job {job_id!r} not found")
    return record


def _print_json(out: IO[str], value: Any) -> None:
    out.write(json.dumps(value, indent=2, default=str) + "\n")


def record_json(record: JobRecord) -> dict[str, Any]:
    data = asdict(record)
    data["state"] = record.state.value
    data["history"] = list(record.history)
    if record.spec:
        with contextlib.suppress(ValueError):
            data["spec"] = json.loads(record.spec)
    return data


# --- submit -------------------------------------------------------------------------------------------------------


def _load_documents(path: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise TrainctlError(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE) from None
    as_yaml = path.endswith((".yaml", ".yml")) or (path == "-" and not text.lstrip().startswith(("{", "[")))
    try:
        if as_yaml:
            import yaml

            document = yaml.safe_load(text)
        else:
            document = json.loads(text)
    except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError: both are "this file is not readable"
        kind = "YAML" if as_yaml else "JSON"
        raise TrainctlError(f"{path}: not valid {kind}: {str(exc).splitlines()[0]}", EXIT_USAGE) from None
    documents = document if isinstance(document, list) else [document]
    if not documents or not all(isinstance(d, dict) for d in documents):
        raise TrainctlError(f"{path}: expected a job (a mapping) or a list of jobs", EXIT_USAGE)
    return documents


def _pairs(values: Sequence[str], field: str, errors: list[FieldError]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            errors.append(FieldError(field, f"{value!r} is not KEY=VALUE"))
        else:
            pairs[key] = val
    return pairs


def _overrides(args: Any, errors: list[FieldError]) -> dict[str, Any]:
    fields = ("job_id", "name", "image", "cpu", "memory", "gpu", "nodes", "max_attempts", "timeout_seconds", "priority")
    found: dict[str, Any] = {name: getattr(args, name) for name in fields if getattr(args, name) is not None}
    for name in ("checkpoint_uri", "spot", "dedicated"):
        if getattr(args, name) is not None:
            found[name] = getattr(args, name)
    if args.array is not None:
        found["array"] = {"size": args.array}
    if args.command_line is not None:
        text = args.command_line.strip()
        try:
            found["command"] = json.loads(text) if text.startswith("[") else shlex.split(text)
        except ValueError as exc:
            errors.append(FieldError("command", f"cannot parse {text!r}: {exc}"))
    return found


def new_job_id(name: str | None) -> str:
    """``<name>-<UTC time>-<random>``: readable, sortable, unique, valid as a job id."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name or "").strip("-_")[:30] or "job"
    if not slug[0].isalnum():
        slug = "job-" + slug
    return f"{slug}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def build_specs(args: Any) -> list[JobSpec]:
    """File documents (or one empty document) merged with the flags, validated; JobSpecInvalid lists every
    problem of every document, each field prefixed by ``jobs[i].`` when there are several."""
    errors: list[FieldError] = []
    overrides = _overrides(args, errors)
    env = _pairs(args.env, "environment", errors)
    tags = _pairs(args.tag, "tags", errors)
    documents = _load_documents(args.file) if args.file else [{}]
    specs: list[JobSpec] = []
    for index, document in enumerate(documents):
        merged = {**document, **overrides}
        if env:
            merged["environment"] = {**(document.get("environment") or {}), **env}
        if tags:
            merged["tags"] = {**(document.get("tags") or {}), **tags}
        if not merged.get("job_id"):
            merged["job_id"] = new_job_id(merged.get("name") if isinstance(merged.get("name"), str) else None)
        prefix = f"jobs[{index}]." if len(documents) > 1 else ""
        try:
            spec = parse_job_spec(merged)
            if size_of(spec):
                expand(spec)  # every child must be valid too
            specs.append(spec)
        except JobSpecInvalid as exc:
            errors.extend(FieldError(prefix + e.field, e.message) for e in exc.errors)
    if errors:
        raise JobSpecInvalid(errors)
    ids = [str(s.job_id) for s in specs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise JobSpecInvalid([FieldError("job_id", f"{d!r} appears more than once") for d in duplicates])
    return specs


def submit(session: Session, args: Any, out: IO[str]) -> int:
    try:
        specs = build_specs(args)
    except JobSpecInvalid as exc:
        lines = "\n".join(f"  {error}" for error in exc.errors)
        count = len(exc.errors)
        raise TrainctlError(f"invalid job spec ({count} problem{'s' * (count != 1)}):\n{lines}", EXIT_USAGE) from None
    store, sqs = _store(session), session.client("sqs")
    submitted: list[dict[str, str]] = []
    for spec in specs:
        job_id, queue = str(spec.job_id), "dispatch" if spec.dedicated or size_of(spec) else "worker"
        queue_url = session.get(QUEUES[queue][0])
        body = spec.to_json()
        created, existing = aws_call(
            "PutItem",
            store.create_if_absent,
            job_id=job_id,
            state=JobState.SUBMITTED,
            attempt=1,
            now=utcnow(),
            spec=body,
            queue=queue,
            **parent_fields(spec),
        )
        if not created:
            raise TrainctlError(
                f"job {job_id!r} already exists ({existing.state}, submitted {existing.submitted_at}); "
                "a job id is used once: choose another --job-id"
            )
        try:
            message_id = aws_call("SendMessage", sqs.send_message, QueueUrl=queue_url, MessageBody=body)["MessageId"]
        except TrainctlError as exc:
            with contextlib.suppress(Exception):
                store.transition(
                    job_id,
                    JobState.FAILED,
                    expected_states=JobState.SUBMITTED,
                    expected_attempt=1,
                    now=utcnow(),
                    reason=f"trainctl could not enqueue it: {exc}",
                )
            raise
        submitted.append({"job_id": job_id, "queue": queue, "message_id": message_id})
        print(f"submitted {job_id} to the {queue} queue", file=sys.stderr)
    if not args.wait:
        if args.json:
            _print_json(out, submitted[0] if len(submitted) == 1 else submitted)
        else:
            out.write("".join(f"{s['job_id']}\n" for s in submitted))
        return EXIT_OK
    if not args.json:
        out.write("".join(f"{s['job_id']}\n" for s in submitted))
        out.flush()
    return _wait(session, args, out, [s["job_id"] for s in submitted])


# --- waiting ------------------------------------------------------------------------------------------------------


def _clock(stamp: str | None) -> str:
    return (stamp or "")[11:19] or "--:--:--"


def _wait(session: Session, args: Any, out: IO[str], job_ids: list[str]) -> int:
    """Follow jobs to terminal states, printing each transition (and each new waiting reason) on stderr."""
    store = _store(session)
    seen = dict.fromkeys(job_ids, 0)
    reasons: dict[str, str | None] = {}
    started = time.monotonic()
    width = max(len(j) for j in job_ids)
    while True:
        records = {job_id: aws_call("GetItem", store.get, job_id=job_id) for job_id in job_ids}
        for job_id, record in records.items():
            if record is None:
                raise TrainctlError(f"job {job_id!r} disappeared from the jobs table")
            for entry in record.history[seen[job_id] :]:
                why = f"  {entry['reason']}" if entry.get("reason") else ""
                print(f"{_clock(entry.get('at'))}  {job_id:<{width}}  {entry.get('to')}{why}", file=sys.stderr)
            seen[job_id] = len(record.history)
            if not record.terminal and record.reason and reasons.get(job_id) != record.reason:
                print(
                    f"{_clock(record.updated_at)}  {job_id:<{width}}  {record.state}  {record.reason}", file=sys.stderr
                )
            reasons[job_id] = record.reason
        if all(r is not None and r.terminal for r in records.values()):
            break
        if args.wait_timeout and time.monotonic() - started > args.wait_timeout:
            waiting = ", ".join(f"{j} {r.state}" for j, r in records.items() if r is not None and not r.terminal)
            raise TrainctlError(f"gave up waiting after {args.wait_timeout:g} s: {waiting}")
        sleep(args.interval)
    final = [r for r in records.values() if r is not None]
    if args.json:
        _print_json(out, [record_json(r) for r in final] if len(final) > 1 else record_json(final[0]))
    failed = [r for r in final if r.state != JobState.SUCCEEDED]
    for record in failed:
        print(f"trainctl: job {record.job_id} {record.state}: {record.reason or 'no reason recorded'}", file=sys.stderr)
    return EXIT_ERROR if failed else EXIT_OK


# --- status / list ------------------------------------------------------------------------------------------------


def status(session: Session, args: Any, out: IO[str]) -> int:
    record = _get(session, args.job_id)
    if args.wait:  # exit code says whether it SUCCEEDED
        return _wait(session, args, out, [record.job_id])
    facts = gather(session, _store(session), record.job_id, utcnow())
    if args.json:
        _print_json(out, {**record_json(record), "why": explain(facts)})
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


def explain_job(session: Session, args: Any, out: IO[str]) -> int:
    facts = gather(session, _store(session), args.job_id, utcnow())
    if facts.record is None and facts.parent is None:
        raise TrainctlError(f"job {args.job_id!r} not found")
    why = explain(facts)
    if args.json:
        _print_json(out, {"job_id": args.job_id, "state": facts.record and facts.record.state.value, "why": why})
    else:
        out.write("".join(f"{line}\n" for line in why))
    return EXIT_OK


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], out: IO[str]) -> None:
    """Columns padded to their widest cell; on a terminal the last column is cut to the window's width."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    if out.isatty():
        room = shutil.get_terminal_size().columns - sum(w + 2 for w in widths[:-1])
        widths[-1] = max(10, min(widths[-1], room))
    for row in [list(headers), *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths[:-1], strict=True)]
        last = row[-1] if len(row[-1]) <= widths[-1] else row[-1][: widths[-1] - 1] + "…"
        out.write("  ".join([*cells, last]).rstrip() + "\n")


def list_jobs(session: Session, args: Any, out: IO[str]) -> int:
    store = _store(session)
    states = [JobState(args.state)] if args.state else list(JobState)
    records: list[JobRecord] = []
    if args.parent:  # in index order
        records = [r for r in children_of(store, args.parent) if r.state in states]
    else:
        for state in states:
            records.extend(aws_call("Query", lambda s=state: list(store.query_state(s))))
        records.sort(key=lambda r: r.updated_at or "", reverse=True)
    records = records[: max(0, args.limit)]
    if args.json:
        _print_json(out, [record_json(r) for r in records])
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


# --- cancel -------------------------------------------------------------------------------------------------------


def cancel(session: Session, args: Any, out: IO[str]) -> int:
    store = _store(session)
    try:
        record = aws_call(
            "UpdateItem", store.request_cancel, job_id=args.job_id, now=utcnow(), reason="cancel requested"
        )
    except JobStateConflict as conflict:
        if conflict.current is None:
            raise TrainctlError(f"job {args.job_id!r} not found") from None
        raise TrainctlError(f"job {args.job_id} is already {conflict.current.state}: nothing to cancel") from None
    if is_parent(record):
        return cancel_children(store, record, utcnow(), lambda arn, why: _stop_task(session, arn, why), out)
    action: str
    if record.state in WAITING and record.launch_claim is None:
        try:
            record = store.transition(
                record.job_id,
                JobState.CANCELLED,
                expected_states=record.state,
                expected_attempt=record.attempt,
                now=utcnow(),
                reason="cancelled by trainctl before it started",
            )
            aws_call("UpdateItem", on_child_finished, store=store, child=record, now=utcnow())  # a sweep's child
            action = "cancelled before it started"
        except JobStateConflict as conflict:  # it started meanwhile: the worker/task sees the request
            record = conflict.current or record
            action = f"it started meanwhile ({record.state}); its {record.queue or ''} consumer stops it"
    elif record.state in ACTIVE and record.queue == "dispatch" and record.task_arn:
        _stop_task(session, record.task_arn, f"cancelled by trainctl (job {record.job_id})")
        action = f"stopping task {record.task_arn}; the job becomes CANCELLED when it stops"
    elif record.state in ACTIVE:
        action = "the worker running it stops it at its next heartbeat; the job then becomes CANCELLED"
    else:
        action = "a launch is in progress; its task is stopped as soon as it is recorded"
    if args.json:
        _print_json(out, {"job_id": record.job_id, "state": record.state.value, "action": action})
    else:
        out.write(f"{record.job_id}: {action}\n")
    return EXIT_OK


def _stop_task(session: Session, task_arn: str, reason: str) -> None:
    cluster = session.get("cluster")
    aws_call("StopTask", session.client("ecs").stop_task, cluster=cluster, task=task_arn, reason=reason)


# --- logs ---------------------------------------------------------------------------------------------------------


def _log_location(session: Session, record: JobRecord) -> tuple[str, str]:
    """(log group, log stream) of the job's task, from its task definition's awslogs options."""
    assert record.task_arn is not None
    task_id = record.task_arn.rsplit("/", 1)[-1]
    ecs = session.client("ecs")
    cluster = session.find("cluster")
    described = (
        aws_call("DescribeTasks", ecs.describe_tasks, cluster=cluster, tasks=[record.task_arn]) if cluster else {}
    )
    tasks = described.get("tasks") or []
    if tasks:
        definition = aws_call(
            "DescribeTaskDefinition", ecs.describe_task_definition, taskDefinition=tasks[0]["taskDefinitionArn"]
        )["taskDefinition"]
        containers = [
            c
            for c in definition.get("containerDefinitions", [])
            if (c.get("logConfiguration") or {}).get("logDriver") == "awslogs"
        ]
        containers.sort(key=lambda c: c.get("name") != "trainer")
        if containers:
            options = containers[0]["logConfiguration"].get("options", {})
            group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
            if group and prefix:
                return str(group), f"{prefix}/{containers[0]['name']}/{task_id}"
    group_key, stream_prefix = FALLBACK_STREAMS.get(record.queue or "", FALLBACK_STREAMS["dispatch"])
    return session.get(group_key), f"{stream_prefix}/{task_id}"


def logs(session: Session, args: Any, out: IO[str]) -> int:
    record = _get(session, args.job_id)
    if not record.task_arn:
        raise TrainctlError(f"job {record.job_id} has no task yet ({record.state}): no logs to show")
    group, stream = _log_location(session, record)
    client = session.client("logs")
    request: dict[str, Any] = {"logGroupName": group, "logStreamNames": [stream]}
    if record.queue == "worker":  # a worker's stream holds many jobs; each output line carries "[job#attempt] "
        request["filterPattern"] = f'"[{record.job_id}#"'
    start = 0
    while True:
        token = None
        while True:
            page = aws_call(
                "FilterLogEvents",
                client.filter_log_events,
                _messages={"ResourceNotFoundException": f"no logs yet for job {record.job_id} ({group} {stream})"},
                **request,
                startTime=start,
                **({"nextToken": token} if token else {}),
            )
            for event in page.get("events", []):
                out.write(event["message"].rstrip("\n") + "\n")
                start = max(start, int(event["timestamp"]) + 1)
            token = page.get("nextToken")
            if not token:
                break
        out.flush()
        if not args.follow or _get(session, record.job_id).terminal:
            return EXIT_OK
        sleep(args.interval)


# --- dlq ----------------------------------------------------------------------------------------------------------


def _dlq_messages(session: Session, queue: str, limit: int) -> list[dict[str, Any]]:
    """Peek: receive up to ``limit`` messages, then make them visible again at once."""
    sqs, url = session.client("sqs"), session.get(QUEUES[queue][1])
    messages: list[dict[str, Any]] = []
    while len(messages) < limit:
        page = aws_call(
            "ReceiveMessage",
            sqs.receive_message,
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - len(messages)),
            VisibilityTimeout=60,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        if not page:
            break
        messages.extend({**m, "queue": queue, "dlq_url": url} for m in page)
    return messages


def _release(session: Session, messages: Iterable[Mapping[str, Any]]) -> None:
    for message in messages:
        with contextlib.suppress(Exception):
            session.client("sqs").change_message_visibility(
                QueueUrl=message["dlq_url"], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )


def _attribute(message: Mapping[str, Any], name: str) -> str | None:
    value = (message.get("MessageAttributes") or {}).get(name, {}).get("StringValue")
    return str(value) if value else None


def _dlq_job_id(message: Mapping[str, Any]) -> str:
    return (
        _attribute(message, JOB_ID)
        or guess_job_id(message.get("Body") or "")
        or derive_job_id(_attribute(message, "source_message_id") or message["MessageId"])
    )


def _dlq_reason(message: Mapping[str, Any]) -> str:
    receives = (message.get("Attributes") or {}).get("ApproximateReceiveCount", "?")
    return _attribute(message, REASON) or (
        f"no reason attached: moved by the queue after {receives} receives without success (maxReceiveCount)"
    )


def dlq(session: Session, args: Any, out: IO[str]) -> int:
    queues = ["worker", "dispatch"] if args.queue == "all" else [args.queue]
    messages = [m for q in queues for m in _dlq_messages(session, q, args.max)]
    try:
        if args.dlq_command == "list":
            return _dlq_list(messages, args, out)
        return _dlq_redrive(session, messages, args, out)
    finally:
        _release(session, [m for m in messages if not m.get("moved")])


def _dlq_list(messages: list[dict[str, Any]], args: Any, out: IO[str]) -> int:
    if args.json:
        _print_json(
            out,
            [
                {
                    "queue": m["queue"],
                    "message_id": m["MessageId"],
                    "job_id": _dlq_job_id(m),
                    "reason": _dlq_reason(m),
                    "sent_at": _sent(m),
                    "body": m.get("Body"),
                }
                for m in messages
            ],
        )
        return EXIT_OK
    rows = [[m["queue"], _dlq_job_id(m), _sent(m), _dlq_reason(m)] for m in messages]
    table(rows, ["QUEUE", "JOB ID", "SENT (UTC)", "REASON"], out)
    return EXIT_OK


def _sent(message: Mapping[str, Any]) -> str:
    millis = (message.get("Attributes") or {}).get("SentTimestamp")
    if not millis:
        return ""
    return datetime.fromtimestamp(int(millis) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _dlq_redrive(session: Session, messages: list[dict[str, Any]], args: Any, out: IO[str]) -> int:
    store, sqs = _store(session), session.client("sqs")
    redriven: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    for message in messages:
        job_id = _dlq_job_id(message)
        if args.job and job_id not in args.job:
            continue
        record = aws_call("GetItem", store.get, job_id=job_id)
        if record is not None and record.terminal:
            why = f"job is {record.state} (final); fix the spec and submit it again under a new job id"
            skipped.append({"job_id": job_id, "queue": message["queue"], "reason": why})
            continue
        body = message.get("Body") or ""
        with contextlib.suppress(ValueError):
            document = json.loads(body)
            if isinstance(document, dict) and not document.get("job_id"):
                body = json.dumps({**document, "job_id": job_id})  # keep the job's identity on the new message
        attributes = {
            k: {"DataType": v["DataType"], "StringValue": v["StringValue"]}
            for k, v in (message.get("MessageAttributes") or {}).items()
            if k not in INTERNAL_ATTRIBUTES and "StringValue" in v
        }
        target = session.get(QUEUES[message["queue"]][0])
        aws_call("SendMessage", sqs.send_message, QueueUrl=target, MessageBody=body, MessageAttributes=attributes)
        aws_call(
            "DeleteMessage", sqs.delete_message, QueueUrl=message["dlq_url"], ReceiptHandle=message["ReceiptHandle"]
        )
        message["moved"] = True
        if record is not None:
            with contextlib.suppress(Exception):
                store.annotate(
                    job_id,
                    expected_states=record.state,
                    expected_attempt=record.attempt,
                    now=utcnow(),
                    reason="redriven from the DLQ by trainctl",
                )
        redriven.append({"job_id": job_id, "queue": message["queue"]})
    if args.json:
        _print_json(out, {"redriven": redriven, "skipped": skipped})
    else:
        out.write(
            f"redriven {len(redriven)} message(s)"
            + "".join(f"\n  {r['job_id']} -> {r['queue']} queue" for r in redriven)
            + "\n"
        )
        for skip in skipped:
            out.write(f"skipped {skip['job_id']}: {skip['reason']}\n")
    return EXIT_OK
