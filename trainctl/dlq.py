"""`trainctl dlq list` and `redrive`: rejected and dead-lettered messages with their reasons, and sending them back
to their queues (the job's record notes it, lifecycle.enqueue)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any

from jobs.jobspec import derive_job_id, guess_job_id
from jobs.messages import JOB_ID, REASON
from jobs.timeutil import utcnow
from lifecycle.enqueue import note_redriven
from trainctl.errors import EXIT_OK, aws_call
from trainctl.output import print_json, table
from trainctl.resources import QUEUES, Session

INTERNAL_ATTRIBUTES = {REASON, JOB_ID, "source_message_id", "deferrals"}
"""Message attributes a redriven message leaves behind (they described its rejection)."""


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
        print_json(
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
    store, sqs = session.jobs(), session.client("sqs")
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
                note_redriven(store, record, utcnow(), by="trainctl")
        redriven.append({"job_id": job_id, "queue": message["queue"]})
    if args.json:
        print_json(out, {"redriven": redriven, "skipped": skipped})
    else:
        out.write(
            f"redriven {len(redriven)} message(s)"
            + "".join(f"\n  {r['job_id']} -> {r['queue']} queue" for r in redriven)
            + "\n"
        )
        for skip in skipped:
            out.write(f"skipped {skip['job_id']}: {skip['reason']}\n")
    return EXIT_OK
