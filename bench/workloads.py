"""Job arrival workloads: steady, bursty, heavy-tailed, a 500-job burst, or a trace file.

Every job carries the start latency of its first task, drawn once, so every policy (and
the lower bound) sees the same Fargate start for a job's first launch (common random numbers).
"""

from __future__ import annotations

import csv
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.models import Params
from jobs.sizes import FARGATE_MEMORY, describe_memory_choices

DAY = 86400.0

# Philly (ATC'19) job run times, computed from alibaba/clusterdata philly_runtime.csv (aws-facts §6):
# (seconds, share of jobs at or under). The 5 s floor is an assumption; the rest are published points.
PHILLY_CDF: tuple[tuple[float, float], ...] = (
    (5, 0.0),
    (60, 0.097),
    (131, 0.25),
    (300, 0.319),
    (1186, 0.50),
    (1800, 0.59),
    (3342, 0.75),
    (3600, 0.763),
    (12860, 0.90),
    (50000, 0.95),
    (86400, 0.965),
    (287333, 0.99),
    (1_000_000, 1.0),
)

SYNTHETIC = ("steady", "bursty", "heavy_tail", "burst500")
TRACE_COLUMNS = ("submit_time", "duration", "cpu", "memory")


class TraceError(ValueError):
    """A trace file cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    submit: float  # seconds from the start of the run
    duration: float  # seconds of work
    vcpu: float
    gb: float
    start_latency: float  # Fargate start of the job's first task (s)


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    jobs: tuple[Job, ...]
    window_s: float  # arrivals happen in [0, window_s)
    burst_at: float | None = None  # when a one-shot burst was submitted (burst500)


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on the seed and the names (stable across runs and processes)."""
    return np.random.default_rng([seed, *(zlib.crc32(n.encode()) for n in names)])


def philly_durations(rng: np.random.Generator, n: int, cap_s: float) -> np.ndarray:
    """Draw from the Philly CDF, log-linear between published points, capped at ``cap_s``."""
    secs = np.log([p[0] for p in PHILLY_CDF])
    probs = np.array([p[1] for p in PHILLY_CDF])
    return np.minimum(np.exp(np.interp(rng.random(n), probs, secs)), cap_s)


def short_durations(rng: np.random.Generator, n: int, p: Params) -> np.ndarray:
    """Short-job mix: lognormal around the Helios median, capped."""
    return np.minimum(p.short_median_s * np.exp(p.short_sigma * rng.standard_normal(n)), p.short_cap_s)


def build(name: str, p: Params, seed: int, hours: float, trace: Path | None = None) -> Workload:
    """Generate the named workload (``trace`` needs ``trace``: a CSV path)."""
    rng = rng_for(seed, "workload", name)
    window = hours * 3600.0
    burst_at = None
    if name == "steady":
        submit = _poisson(rng, p.steady_per_h, window)
        duration = short_durations(rng, len(submit), p)
        text = f"Poisson {p.steady_per_h:g}/h, short jobs (lognormal, median {p.short_median_s:g} s)"
    elif name == "bursty":
        submit = np.sort(np.concatenate([_diurnal(rng, p, window), _sweeps(rng, p, window)]))
        duration = short_durations(rng, len(submit), p)
        text = (
            f"diurnal {p.bursty_per_h:g}/h +/-{p.diurnal_amplitude:.0%} plus ~{p.bursts_per_day:g} sweeps/day "
            f"of {p.burst_min}-{p.burst_max} jobs, short jobs"
        )
    elif name == "heavy_tail":
        submit = _poisson(rng, p.heavy_per_h, window)
        duration = philly_durations(rng, len(submit), p.philly_cap_s)
        text = f"Poisson {p.heavy_per_h:g}/h, Philly run times (capped at {p.philly_cap_s / 3600:g} h)"
    elif name == "burst500":
        burst_at = 60.0
        submit = np.full(p.burst500_jobs, burst_at)
        duration = short_durations(rng, len(submit), p)
        window = burst_at + 1.0
        text = f"{p.burst500_jobs} jobs submitted at once, short jobs"
    elif name == "trace":
        if trace is None:
            raise ValueError("the trace workload needs --trace FILE.csv")
        rows = load_trace(trace)
        submit = np.array([r[0] for r in rows])
        duration = np.array([r[1] for r in rows])
        vcpu = np.array([r[2] / 1024 for r in rows])
        gb = np.array([r[3] / 1024 for r in rows])
        window = float(submit.max()) + 1.0
        text = f"trace {trace.name}: {len(rows)} jobs"
        return _workload(name, text, submit, duration, vcpu, gb, p, rng, window, None)
    else:
        raise ValueError(f"unknown workload {name!r} (choose from {', '.join((*SYNTHETIC, 'trace'))})")
    n = len(submit)
    return _workload(
        name, text, submit, duration, np.full(n, p.job_vcpu), np.full(n, p.job_gb), p, rng, window, burst_at
    )


def _workload(
    name: str,
    text: str,
    submit: np.ndarray,
    duration: np.ndarray,
    vcpu: np.ndarray,
    gb: np.ndarray,
    p: Params,
    rng: np.random.Generator,
    window: float,
    burst_at: float | None,
) -> Workload:
    latency = p.start_latency(rng, len(submit))
    order = np.argsort(submit, kind="stable")
    jobs = tuple(
        Job(i, float(submit[k]), float(duration[k]), float(vcpu[k]), float(gb[k]), float(latency[k]))
        for i, k in enumerate(order)
    )
    return Workload(name, text, jobs, window, burst_at)


def _poisson(rng: np.random.Generator, per_h: float, window: float) -> np.ndarray:
    return np.sort(rng.uniform(0.0, window, rng.poisson(per_h * window / 3600.0)))


def _diurnal(rng: np.random.Generator, p: Params, window: float) -> np.ndarray:
    """Poisson arrivals whose rate follows a daily sine (peak mid-afternoon), by thinning."""
    peak = p.bursty_per_h * (1 + p.diurnal_amplitude)
    t = _poisson(rng, peak, window)
    rate = p.bursty_per_h * (1 + p.diurnal_amplitude * np.sin(2 * math.pi * (t / DAY - 0.375)))
    return t[rng.random(len(t)) < rate / peak]


def _sweeps(rng: np.random.Generator, p: Params, window: float) -> np.ndarray:
    """Hyper-parameter sweeps: a Poisson number of bursts, each many jobs within a minute."""
    starts = rng.uniform(0.0, window, rng.poisson(p.bursts_per_day * window / DAY))
    parts = [s + rng.uniform(0.0, p.burst_spread_s, rng.integers(p.burst_min, p.burst_max + 1)) for s in starts]
    return np.concatenate(parts) if parts else np.empty(0)


def load_trace(path: Path) -> list[tuple[float, float, int, int]]:
    """Read a trace CSV: header ``submit_time,duration,cpu,memory``; seconds, ECS cpu units, MiB.

    Rows come back sorted by submit time. Any bad line raises ``TraceError`` naming it.
    """
    try:
        handle = path.open(newline="", encoding="utf-8-sig")  # -sig: a spreadsheet's byte-order mark is fine
    except OSError as error:
        raise TraceError(f"{path}: cannot read ({error.strerror})") from None
    rows: list[tuple[float, float, int, int]] = []
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader, [])]
            if tuple(header) != TRACE_COLUMNS:
                got = ",".join(header)
                raise TraceError(f"{path} line 1: header must be {','.join(TRACE_COLUMNS)}, got {got!r}")
            for fields in reader:
                where = f"{path} line {reader.line_num}"
                if not any(f.strip() for f in fields):
                    continue
                if len(fields) != len(TRACE_COLUMNS):
                    raise TraceError(f"{where}: expected {len(TRACE_COLUMNS)} fields, got {len(fields)}")
                rows.append(_trace_row(where, fields))
        except UnicodeDecodeError as error:
            raise TraceError(f"{path}: not UTF-8 text ({error.reason}); save it as UTF-8 CSV") from None
        except csv.Error as error:
            raise TraceError(f"{path} line {reader.line_num}: not valid CSV ({error})") from None
    if not rows:
        raise TraceError(f"{path}: no jobs after the header")
    return sorted(rows, key=lambda r: r[0])


def _trace_row(where: str, fields: list[str]) -> tuple[float, float, int, int]:
    submit = _number(where, "submit_time", fields[0])
    duration = _number(where, "duration", fields[1])
    cpu = _whole(where, "cpu", fields[2])
    memory = _whole(where, "memory", fields[3])
    if submit < 0:
        raise TraceError(f"{where}: submit_time must be >= 0, got {fields[0].strip()}")
    if duration <= 0:
        raise TraceError(f"{where}: duration must be > 0 seconds, got {fields[1].strip()}")
    if cpu not in FARGATE_MEMORY:
        raise TraceError(f"{where}: cpu {cpu} is not a Fargate size (one of {', '.join(map(str, FARGATE_MEMORY))})")
    if memory not in FARGATE_MEMORY[cpu]:
        raise TraceError(f"{where}: memory {memory} MiB does not fit cpu {cpu} ({describe_memory_choices(cpu)})")
    return submit, duration, cpu, memory


def _whole(where: str, column: str, raw: str) -> int:
    value = _number(where, column, raw)
    if not value.is_integer():
        raise TraceError(f"{where}: {column} must be a whole number, got {raw.strip()!r}")
    return int(value)


def _number(where: str, column: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise TraceError(f"{where}: {column} must be a number, got {raw.strip()!r}") from None
    if not math.isfinite(value):
        raise TraceError(f"{where}: {column} must be finite, got {raw.strip()!r}")
    return value
