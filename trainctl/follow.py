"""Following jobs to their end (``--wait``), printing each transition and each new waiting reason on stderr."""

from __future__ import annotations

import sys
import time
from typing import IO, Any

from jobs.states import JobState
from trainctl.errors import EXIT_ERROR, EXIT_OK, TrainctlError, aws_call
from trainctl.output import print_json, record_json
from trainctl.resources import Session

sleep = time.sleep  # tests replace it to advance the system between polls


def _clock(stamp: str | None) -> str:
    return (stamp or "")[11:19] or "--:--:--"


def wait(session: Session, args: Any, out: IO[str], job_ids: list[str]) -> int:
    """Poll until every job is terminal; exit code 0 only when all SUCCEEDED."""
    store = session.jobs()
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
        print_json(out, [record_json(r) for r in final] if len(final) > 1 else record_json(final[0]))
    failed = [r for r in final if r.state != JobState.SUCCEEDED]
    for record in failed:
        print(f"trainctl: job {record.job_id} {record.state}: {record.reason or 'no reason recorded'}", file=sys.stderr)
    return EXIT_ERROR if failed else EXIT_OK
