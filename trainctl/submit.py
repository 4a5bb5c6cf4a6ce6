"""`trainctl submit`: job files and flags merged into validated JobSpecs, each recorded SUBMITTED (the
lifecycle, lifecycle.enqueue) and then sent to its queue."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from jobs.children import expand, size_of
from jobs.errors import FieldError, JobSpecInvalid
from jobs.jobspec import JobSpec, parse_job_spec
from jobs.timeutil import utcnow
from lifecycle.enqueue import enqueue_failed, record_submitted
from trainctl import follow
from trainctl.errors import EXIT_OK, EXIT_USAGE, TrainctlError, aws_call
from trainctl.output import emit_metric, print_json
from trainctl.resources import QUEUES, Session


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
    store, sqs = session.jobs(), session.client("sqs")
    submitted: list[dict[str, str]] = []
    for spec in specs:
        job_id, queue = str(spec.job_id), "dispatch" if spec.dedicated or size_of(spec) else "worker"
        queue_url = session.get(QUEUES[queue][0])
        created, record = aws_call("PutItem", record_submitted, store=store, spec=spec, queue=queue, now=utcnow())
        if not created:
            raise TrainctlError(
                f"job {job_id!r} already exists ({record.state}, submitted {record.submitted_at}); "
                "a job id is used once: choose another --job-id"
            )
        try:
            sent = aws_call("SendMessage", sqs.send_message, QueueUrl=queue_url, MessageBody=record.spec)
        except TrainctlError as exc:
            with contextlib.suppress(Exception):
                enqueue_failed(store, job_id, str(exc), utcnow(), by="trainctl", emit=emit_metric)
            raise
        submitted.append({"job_id": job_id, "queue": queue, "message_id": sent["MessageId"]})
        print(f"submitted {job_id} to the {queue} queue", file=sys.stderr)
    if not args.wait:
        if args.json:
            print_json(out, submitted[0] if len(submitted) == 1 else submitted)
        else:
            out.write("".join(f"{s['job_id']}\n" for s in submitted))
        return EXIT_OK
    if not args.json:
        out.write("".join(f"{s['job_id']}\n" for s in submitted))
        out.flush()
    return follow.wait(session, args, out, [s["job_id"] for s in submitted])
