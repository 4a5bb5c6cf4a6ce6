"""Models of the AWS parts the policies act on: an SQS queue, CloudWatch metrics, Fargate
tasks (start latency, billing, Spot interruptions, launch budgets) and an ECS service.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

import numpy as np

from bench.models import Params, TokenBucket, take_all
from bench.sim import Ledger, Message, Sim, Wakeup


class Queue:
    """A standard SQS queue with a redrive policy (a message received more than
    ``max_receive`` times goes to the DLQ: its job is lost)."""

    def __init__(self, sim: Sim, p: Params, max_receive: int) -> None:
        self.sim, self.p, self.max_receive = sim, p, max_receive
        self.visible: deque[Message] = deque()
        self.in_flight = 0
        self.delayed = 0
        self.on_visible: Callable[[], None] = lambda: None
        self.last_activity = 0.0  # the queue counts as active at the start (it was in use)
        self.woke_at = -math.inf
        # (t, visible, in flight, delayed) after each change, for reads that lag (p.queue_read_lag_s)
        self._history: deque[tuple[float, int, int, int]] = deque([(0.0, 0, 0, 0)])

    def read_counts(self) -> tuple[int, int, int]:
        """GetQueueAttributes: (visible, in flight, delayed) as they were ``queue_read_lag_s`` ago."""
        if self.p.queue_read_lag_s <= 0:
            return len(self.visible), self.in_flight, self.delayed
        cutoff = self.sim.now - self.p.queue_read_lag_s
        history = self._history
        while len(history) > 1 and history[1][0] <= cutoff:
            history.popleft()
        _, visible, in_flight, delayed = history[0]
        return visible, in_flight, delayed

    def _changed(self) -> None:
        if self.p.queue_read_lag_s > 0:
            self._history.append((self.sim.now, len(self.visible), self.in_flight, self.delayed))

    def touch(self) -> None:
        """Any message or API call keeps the queue 'active' for CloudWatch (aws-facts §3)."""
        now = self.sim.now
        if now - self.last_activity > self.p.queue_idle_s:
            self.woke_at = now
        self.last_activity = now

    def metric_lag(self) -> float:
        """Lag of this queue's metrics: longer just after waking from idle (aws-facts §3)."""
        woke = self.sim.now - self.woke_at < self.p.idle_wake_lag_s
        return self.p.metric_lag_s + (self.p.idle_wake_lag_s if woke else 0.0)

    def send(self, msg: Message, delay: float = 0.0) -> None:
        self.touch()
        if delay > 0:
            self.delayed += 1
            self._changed()
            self.sim.after(delay, self._appear, msg)
        else:
            self.visible.append(msg)
            self._changed()
            self.on_visible()

    def _appear(self, msg: Message) -> None:
        self.delayed -= 1
        self.visible.append(msg)
        self._changed()
        self.on_visible()

    def receive(self) -> Message | None:
        self.touch()
        while self.visible:
            msg = self.visible.popleft()
            msg.receives += 1
            if msg.receives > self.max_receive:
                msg.run.lost = f"dead-lettered after {self.max_receive} receives"
                continue
            self.in_flight += 1
            msg.received_at = self.sim.now
            self._changed()
            return msg
        self._changed()
        return None

    def delete(self, msg: Message) -> None:
        self.in_flight -= 1
        self._changed()

    def release(self, msg: Message, delay: float) -> None:
        """A received message becomes visible again after ``delay`` (0: at once); until
        then it stays in flight (ApproximateNumberOfMessagesNotVisible)."""
        if delay > 0:
            self.sim.after(delay, self.release, msg, 0.0)
            return
        self.in_flight -= 1
        self.send(msg)


class Metric:
    """One-minute CloudWatch datapoints, each readable only after its publishing lag."""

    def __init__(self) -> None:
        self._points: list[tuple[float, float]] = []  # (readable at, value)

    def publish(self, readable_at: float, value: float) -> None:
        self._points.append((readable_at, value))

    def latest(self, now: float, n: int) -> list[float] | None:
        """The newest ``n`` readable datapoints (oldest first), or None if fewer exist."""
        out: list[float] = []
        for readable_at, value in reversed(self._points):
            if readable_at <= now:
                out.append(value)
                if len(out) == n:
                    return out[::-1]
        return None


class Task:
    """A Fargate task: PROVISIONING/PENDING until ``running_at``, billed from ``billed_from``."""

    __slots__ = ("billed_from", "busy", "gb", "id", "job", "job_started", "running_at", "spot", "stopped", "vcpu")

    def __init__(self, task_id: int, spot: bool, vcpu: float, gb: float) -> None:
        self.id, self.spot, self.vcpu, self.gb = task_id, spot, vcpu, gb
        self.billed_from = math.inf
        self.running_at: float | None = None
        self.stopped = False  # SIGTERM sent or stopped: takes no more work
        self.job: Message | None = None
        self.job_started = 0.0
        self.busy = 0.0


class Fargate:
    """Task launches against the account's budgets, start latency, billing, Spot interruptions."""

    def __init__(self, sim: Sim, p: Params, rng: np.random.Generator, ledger: Ledger) -> None:
        self.sim, self.p, self.rng, self.ledger = sim, p, rng, ledger
        self.launch_bucket = {s: TokenBucket(p.launch_burst, p.launch_rate) for s in (True, False)}
        self.runtask_calls = TokenBucket(p.runtask_call_burst, p.runtask_call_rate)
        self.cluster_modify = TokenBucket(p.cluster_modify_burst, p.cluster_modify_rate)
        self.update_service = TokenBucket(p.update_service_burst, p.update_service_rate)
        self.live: set[Task] = set()
        self._ids = 0

    def launch(
        self,
        spot: bool,
        vcpu: float,
        gb: float,
        on_running: Callable[[Task], None],
        on_notice: Callable[[Task], None],
        latency: float | None = None,
    ) -> Task:
        """Start a task (the caller took the launch tokens); ``on_running`` fires when it runs,
        ``on_notice`` when Fargate Spot sends the interruption notice."""
        self._ids += 1
        task = Task(self._ids, spot, vcpu, gb)
        if latency is None:
            latency = float(self.p.start_latency(self.rng))
        now = self.sim.now
        task.billed_from = now + latency * (1.0 - self.p.billed_start_share)
        self.live.add(task)
        self.ledger.launches.append((now, spot))
        self.sim.after(latency, self._running, task, on_running, on_notice)
        return task

    def _running(self, task: Task, on_running: Callable[[Task], None], on_notice: Callable[[Task], None]) -> None:
        if task.stopped:
            return
        task.running_at = self.sim.now
        if task.spot and self.p.spot_hazard_per_h > 0:
            self.sim.after(self.rng.exponential(3600.0 / self.p.spot_hazard_per_h), self._notice, task, on_notice)
        on_running(task)

    def _notice(self, task: Task, on_notice: Callable[[Task], None]) -> None:
        if not task.stopped:
            self.ledger.interruptions += 1
            on_notice(task)

    def start_job(self, task: Task, msg: Message, on_done: Callable[[Task, Message], None]) -> None:
        """Run ``msg``'s job on ``task`` from its last checkpoint."""
        run, now = msg.run, self.sim.now
        task.job, task.job_started = msg, now
        run.starts += 1
        if run.first_start is None:
            run.first_start = now
        self.sim.after(run.remaining, self._job_done, task, msg, on_done)

    def _job_done(self, task: Task, msg: Message, on_done: Callable[[Task, Message], None]) -> None:
        if task.job is not msg:  # the job was stopped before it could finish
            return
        self._take_job(task)
        msg.run.remaining = 0.0
        msg.run.finished = self.sim.now
        on_done(task, msg)

    def stop_job(self, task: Task) -> Message | None:
        """Stop the task's job (SIGTERM): it keeps the work up to its last periodic checkpoint."""
        msg = task.job
        if msg is not None:
            elapsed = self._take_job(task)
            interval = self.p.checkpoint_interval_s
            saved = min(math.floor(elapsed / interval) * interval, msg.run.remaining)
            msg.run.remaining -= saved
            self.ledger.lost_work_s += elapsed - saved
        return msg

    def _take_job(self, task: Task) -> float:
        elapsed = self.sim.now - task.job_started
        task.busy += elapsed
        self.ledger.busy_s += elapsed
        task.job = None
        return elapsed

    def stop(self, task: Task, delay: float = 0.0) -> None:
        """SIGTERM now; the task stops (and billing ends) ``delay`` seconds later."""
        if task.stopped:
            return
        task.stopped = True
        if task.running_at is None:  # still starting: stops at once
            delay = 0.0
        self.sim.after(delay, self._stopped, task)

    def _stopped(self, task: Task) -> None:
        if task in self.live:
            self.live.remove(task)
            self.bill(task, self.sim.now)

    def bill(self, task: Task, end: float) -> None:
        if end > task.billed_from:
            seconds = max(end - task.billed_from, self.p.min_billed_s)
            self.ledger.bill(task.spot, seconds, self.p.price_per_s(task.vcpu, task.gb, task.spot))

    def finish(self) -> None:
        """End of the run: bill what still runs up to now."""
        for task in self.live:
            if task.job is not None:
                self._take_job(task)
            self.bill(task, self.sim.now)
        self.live.clear()


class Service:
    """An ECS service of queue workers on Fargate with the cluster's capacity strategy.

    ``protect_busy``: workers set task scale-in protection while busy (this project), so
    scale-in stops only idle tasks; otherwise ECS stops any task (peers). ``return_on_sigterm``:
    a stopped worker returns its message at once (this project); otherwise the message
    reappears when its visibility timeout runs out (``redelivery_s``). ``max_interruptions``: the
    worker counts a stop while running as an interruption of the job and fails the job after
    that many (this project's retry rules); None: only the queue's maxReceiveCount applies.
    """

    def __init__(
        self,
        sim: Sim,
        p: Params,
        fargate: Fargate,
        queue: Queue,
        rng: np.random.Generator,
        *,
        min_tasks: int,
        protect_busy: bool,
        return_on_sigterm: bool,
        redelivery_s: float,
        max_interruptions: int | None = None,
        vcpu: float,
        gb: float,
    ) -> None:
        self.sim, self.p, self.fargate, self.queue, self.rng = sim, p, fargate, queue, rng
        self.protect_busy, self.return_on_sigterm, self.redelivery_s = protect_busy, return_on_sigterm, redelivery_s
        self.vcpu, self.gb = vcpu, gb
        self.max_interruptions = max_interruptions
        self.desired = min_tasks
        self.pending: set[Task] = set()
        self.running: set[Task] = set()
        self.idle: deque[Task] = deque()
        self.busy = 0
        self.service_bucket = TokenBucket(p.service_launch_per_min, p.service_launch_per_min / 60.0)
        self._scheduler = Wakeup(sim, self.reconcile)
        self._area_t, self._area_running, self._area_busy = 0.0, 0.0, 0.0
        self._cpu_mark = (0.0, 0.0)
        queue.on_visible = self.pull
        for _ in range(min_tasks):  # a min > 0 fleet is already up when the run starts
            task = fargate.launch(self._next_is_spot(), vcpu, gb, self._on_running, self._on_notice, latency=0.0)
            self.pending.add(task)

    # ---- counts and the CPU metric ----------------------------------------------------
    @property
    def active(self) -> int:
        return len(self.pending) + len(self.running)

    def _integrate(self) -> None:
        now = self.sim.now
        dt = now - self._area_t
        self._area_running += dt * len(self.running)
        self._area_busy += dt * self.busy
        self._area_t = now

    def cpu_percent(self) -> float | None:
        """Average CPU of running tasks since the last call (busy = 100%, idle = 0%)."""
        self._integrate()
        running, busy = self._area_running - self._cpu_mark[0], self._area_busy - self._cpu_mark[1]
        self._cpu_mark = (self._area_running, self._area_busy)
        return 100.0 * busy / running if running > 0 else None

    # ---- control ----------------------------------------------------------------------
    def set_desired(self, desired: int) -> None:
        """UpdateService (throttled calls wait for a token), then the scheduler acts."""
        self.fargate.ledger.calls["UpdateService"] += 1
        wait = take_all(self.sim.now, [self.fargate.update_service])
        if wait:
            self.fargate.ledger.calls["UpdateService throttled"] += 1
            self.sim.after(wait, self.set_desired, desired)
            return
        self.desired = desired
        self._scheduler.at(self.sim.now + self.p.service_reaction_s)

    def reconcile(self) -> None:
        """The ECS service scheduler: launch or stop tasks towards the desired count."""
        now = self.sim.now
        while self.active < self.desired:
            spot = self._next_is_spot()
            wait = take_all(now, [self.fargate.launch_bucket[spot], self.service_bucket])
            if wait:
                self._scheduler.at(now + wait)
                break
            self.pending.add(self.fargate.launch(spot, self.vcpu, self.gb, self._on_running, self._on_notice))
        surplus = self.active - self.desired
        if surplus > 0:
            candidates = sorted(self.pending, key=lambda t: t.id) + sorted(self.running, key=lambda t: t.id)
            if self.protect_busy:
                candidates = [t for t in candidates if t.job is None]
            picked = self.rng.choice(len(candidates), size=min(surplus, len(candidates)), replace=False)
            for i in sorted(picked):
                self._terminate(candidates[i], scale_in=True)
        self.pull()

    def _next_is_spot(self) -> bool:
        """Capacity provider strategy: ``base`` tasks on-demand, the rest split by weight."""
        p = self.p
        spot = sum(t.spot for t in self.pending) + sum(t.spot for t in self.running)
        on_demand = self.active - spot
        if on_demand < p.on_demand_base or p.spot_weight == 0:
            return False
        if p.on_demand_weight == 0:
            return True
        return spot / p.spot_weight <= (on_demand - p.on_demand_base) / p.on_demand_weight

    # ---- workers --------------------------------------------------------------------
    def pull(self) -> None:
        """Idle workers long-poll: each takes a visible message at once."""
        while self.idle and self.queue.visible:
            msg = self.queue.receive()
            if msg is None:
                return
            task = self.idle.popleft()
            self._integrate()
            self.busy += 1
            self.fargate.start_job(task, msg, self._on_done)

    def _on_running(self, task: Task) -> None:
        self._integrate()
        self.pending.discard(task)
        self.running.add(task)
        self.idle.append(task)
        self.pull()

    def _on_done(self, task: Task, msg: Message) -> None:
        self._integrate()
        self.busy -= 1
        self.queue.delete(msg)
        self.idle.append(task)
        if self.active > self.desired:  # protection released: ECS can now stop this task
            self.reconcile()
        else:
            self.pull()

    def _on_notice(self, task: Task) -> None:
        self._terminate(task, scale_in=False)
        self.reconcile()  # the service replaces the interrupted task

    def _terminate(self, task: Task, *, scale_in: bool) -> None:
        self._integrate()
        self.pending.discard(task)
        self.running.discard(task)
        if task in self.idle:
            self.idle.remove(task)
        msg = self.fargate.stop_job(task)
        if msg is not None:
            self.busy -= 1
            self.fargate.ledger.killed_busy += scale_in
            msg.interruptions += 1
            if self.max_interruptions is not None and msg.interruptions > self.max_interruptions:
                msg.run.lost = f"FAILED after {self.max_interruptions} interruptions"
                self.queue.delete(msg)
            else:
                self.queue.release(msg, 0.0 if self.return_on_sigterm else self.redelivery_s)
        busy_stop = self.p.sigterm_to_stop_s if scale_in else self.p.spot_stop_s
        self.fargate.stop(task, busy_stop if msg is not None else 0.0)
