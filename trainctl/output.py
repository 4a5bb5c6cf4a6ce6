"""What trainctl writes: JSON, tables, job records; and where a finished job's metric line goes."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from typing import IO, Any

from jobs.record import JobRecord

metrics = logging.getLogger("trainctl.metrics")


def emit_metric(line: str) -> None:
    """A job trainctl ended (lifecycle.finished): its CloudWatch embedded-metric-format line. A CLI's output
    reaches no log group CloudWatch reads, so it goes to the `trainctl.metrics` logger, silent by default."""
    metrics.info(line)


def print_json(out: IO[str], value: Any) -> None:
    out.write(json.dumps(value, indent=2, default=str) + "\n")


def record_json(record: JobRecord) -> dict[str, Any]:
    data = asdict(record)
    data["state"] = record.state.value
    data["history"] = list(record.history)
    if record.spec:
        with contextlib.suppress(ValueError):
            data["spec"] = json.loads(record.spec)
    return data


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
