"""The hook every path that ends a job calls once, right after its terminal write succeeded.

It prints the job's CloudWatch embedded-metric-format line (Lambda and ECS awslogs both deliver a JSON line
on stdout as EMF) and counts the end on a sweep's parent (settling the parent after its last child). Only the
writer whose conditional transition won calls it, so each job emits exactly one metric line. Lean on purpose:
the Lambdas and the worker image both import it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from jobs.cost import emf_line
from jobs.record import JobRecord
from lifecycle.parents import on_child_finished
from lifecycle.ports import JobStore

log = logging.getLogger(__name__)


def _print(line: str) -> None:
    print(line, flush=True)


def job_finished(
    store: JobStore, record: JobRecord, now: datetime, *, emit: Callable[[str], None] | None = None
) -> None:
    """Emit the job's metric line (to `emit`; default stdout), then count its end on its parent (a failure
    there is logged: the task-events reconcile pass settles a parent left behind)."""
    if not record.terminal:
        return
    (emit or _print)(
        emf_line(
            at=now,
            job_id=record.job_id,
            state=record.state.value,
            queue=record.queue,
            cost=record.extra,
            parent_id=record.extra.get("parent_id"),
        )
    )
    try:
        on_child_finished(store, record, now)
    except Exception:
        log.exception("could not update the parent of finished job %s", record.job_id)
