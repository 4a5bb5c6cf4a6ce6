"""The event loop (virtual time in seconds), job bookkeeping and the per-run ledger."""

from __future__ import annotations

import heapq
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.workloads import Job


class Sim:
    """A discrete-event loop: callbacks run in time order (ties in scheduling order)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._stopped = False

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (max(t, self.now), self._seq, fn, args))

    def after(self, dt: float, fn: Callable[..., None], *args: Any) -> None:
        self.at(self.now + dt, fn, *args)

    def every(self, period: float, fn: Callable[[], None], first: float = 0.0) -> None:
        """Run ``fn`` at ``first`` and every ``period`` seconds after it."""

        def tick() -> None:
            fn()
            self.after(period, tick)

        self.at(first, tick)

    def stop(self) -> None:
        self._stopped = True

    def run(self, until: float) -> None:
        queue, pop = self._queue, heapq.heappop
        while queue and not self._stopped:
            t, _, fn, args = pop(queue)
            if t > until:
                self.now = until
                return
            self.now = t
            fn(*args)


class Wakeup:
    """Runs ``fn`` once at the earliest time it is asked for; later asks before then merge into it."""

    def __init__(self, sim: Sim, fn: Callable[[], None]) -> None:
        self.sim, self.fn = sim, fn
        self.due: float | None = None

    def at(self, t: float) -> None:
        if self.due is None or t < self.due:
            self.due = t
            self.sim.at(t, self._fire, t)

    def _fire(self, t: float) -> None:
        if t == self.due:  # else superseded by an earlier ask, which already ran
            self.due = None
            self.fn()


class Process:
    """A blocking function run as a simulated process: on its own thread, strictly taking turns with the event
    loop, so only one of them runs at a time (runs stay deterministic). The function lets virtual time pass with
    ``wait``, other events run meanwhile; this is how unmodified product code, whose calls block, spends the
    simulated time its calls take."""

    def __init__(self, sim: Sim, body: Callable[[Process], None]) -> None:
        self.sim, self._body = sim, body
        # Two locks used as signals (a primitive lock may be released by another thread): held = keep waiting.
        self._turn = threading.Lock()  # released: the process may run
        self._back = threading.Lock()  # released: the event loop may run
        self._turn.acquire()
        self._back.acquire()
        self._error: BaseException | None = None

    def start(self) -> None:
        """Run the function now, until it waits or returns."""
        threading.Thread(target=self._run, daemon=True).start()
        self._resume()

    def wait(self, dt: float) -> None:
        """Called by the function: ``dt`` seconds of virtual time pass."""
        self.sim.after(dt, self._resume)
        self._back.release()
        self._turn.acquire()

    def _resume(self) -> None:
        self._turn.release()
        self._back.acquire()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        self._turn.acquire()
        try:
            self._body(self)
        except BaseException as error:  # re-raised in the event loop
            self._error = error
        finally:
            self._back.release()


class JobRun:
    """One job's fate under one policy."""

    __slots__ = ("finished", "first_start", "job", "lost", "remaining", "starts")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.remaining = job.duration  # work left after the last checkpoint
        self.first_start: float | None = None
        self.finished: float | None = None
        self.lost: str | None = None  # why, when the job will never finish
        self.starts = 0

    @property
    def settled(self) -> bool:
        return self.finished is not None or self.lost is not None


class Message:
    """An SQS message carrying a job (``attempt`` / ``prefer_on_demand`` as in the contract)."""

    __slots__ = ("attempt", "deferrals", "interruptions", "prefer_on_demand", "received_at", "receives", "run")

    def __init__(self, run: JobRun, attempt: int = 1, prefer_on_demand: bool = False, deferrals: int = 0) -> None:
        self.run = run
        self.attempt = attempt
        self.prefer_on_demand = prefer_on_demand
        self.deferrals = deferrals
        self.interruptions = 0  # worker path: stops while running (Spot notice, scale-in)
        self.receives = 0
        self.received_at = 0.0


@dataclass
class Ledger:
    """What a run spent and did; the report reads it."""

    billed_s: dict[bool, float] = field(default_factory=lambda: {True: 0.0, False: 0.0})  # spot? -> s
    cost: float = 0.0
    busy_s: float = 0.0  # task time spent running jobs (work later lost included)
    calls: Counter[str] = field(default_factory=Counter)  # AWS API calls by name
    runtask_times: list[float] = field(default_factory=list)  # accepted RunTask calls
    launches: list[tuple[float, bool]] = field(default_factory=list)  # (time, spot) of every task launch
    interruptions: int = 0  # Spot interruption notices
    killed_busy: int = 0  # jobs stopped because scale-in stopped their task
    lost_work_s: float = 0.0  # work redone after stops (since the last checkpoint)
    peak_invocations: int = 0  # most concurrent submitter invocations (event-source batches)
    deferred: int = 0  # messages the submitter put back with a delay (cap reached, throttled)
    timeline: list[tuple[float, int, int, int]] = field(default_factory=list)  # t, queue, desired, running

    def bill(self, spot: bool, seconds: float, price_per_s: float) -> None:
        self.billed_s[spot] += seconds
        self.cost += seconds * price_per_s
