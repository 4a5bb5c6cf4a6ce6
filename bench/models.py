"""Model parameters (each with its default's source), latency and price models, rate limits.

Sources are sections of ``docs/aws-facts.md`` ("§1".."§7", "table" = its simulator
parameter table) unless a URL or a file of this repository is named. Every parameter can be
overridden from the command line: ``python -m bench --set name=value`` (``--params`` lists them).
The modelled deployment's settings are read from the stack itself (``bench/deployment.py``:
``cdk_app.config.AppConfig`` defaults and the submitter's event source), not copied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from bench.deployment import STACK, SUBMITTER_EVENT_SOURCE
from cdk_app.prices import ON_DEMAND_US_EAST_1 as ON_DEMAND
from cdk_app.prices import SPOT_FRACTION

ESM = SUBMITTER_EVENT_SOURCE


def _p(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Params:
    # --- Fargate task start -------------------------------------------------------------
    start_median_s: float = _p(35.0, "RunTask->RUNNING median, small image; §1 (Batch doc ~30 s, roadmap#358)")
    start_p99_ratio: float = _p(2.5, "start-latency tail as p99/p50 of a lognormal; ASSUMPTION (table)")
    image_extra_gb: float = _p(0.0, "image size above the 300 MB the median is for (GB)")
    start_s_per_gb: float = _p(40.0, "extra start time per GB of image; rough fit to roadmap#358/#696 (table)")
    billed_start_share: float = _p(
        0.76, "billed share of the start latency: billing starts at image pull, 76% of start (§1 SOCI)"
    )
    # --- ECS / Fargate API budgets, per account and Region (§2) -----------------------
    launch_burst: float = _p(100.0, "Fargate task launches: burst, per capacity type (§2)")
    launch_rate: float = _p(20.0, "Fargate task launches per second, per capacity type (§2)")
    runtask_call_burst: float = _p(20.0, "Fargate RunTask calls: burst (§2)")
    runtask_call_rate: float = _p(20.0, "Fargate RunTask calls per second (§2; <= 10 tasks per call)")
    cluster_modify_burst: float = _p(100.0, "cluster resource modify bucket (RunTask, StopTask): burst (§2)")
    cluster_modify_rate: float = _p(40.0, "cluster resource modify bucket per second (§2)")
    cluster_read_burst: float = _p(100.0, "cluster resource read bucket (ListTasks, DescribeTasks): burst (§2)")
    cluster_read_rate: float = _p(20.0, "cluster resource read bucket per second (§2)")
    service_launch_per_min: float = _p(500.0, "tasks launched per service per minute on Fargate (§2)")
    update_service_burst: float = _p(50.0, "UpdateService bucket: burst (§2)")
    update_service_rate: float = _p(5.0, "UpdateService per second (§2)")
    service_reaction_s: float = _p(2.0, "ECS service scheduler: UpdateService -> task launch; ASSUMPTION")
    runtask_api_s: float = _p(0.25, "submitter time per job: RunTask call + job-record writes; ASSUMPTION")
    # --- Fargate Spot and billing (§5) ---------------------------------------------------
    spot_hazard_per_h: float = _p(0.005, "Spot interruptions per task-hour; NOT FOUND (§5), sweep it")
    spot_notice_s: float = _p(120.0, "Spot interruption notice (SIGTERM -> forced stop) (§5)")
    sigterm_to_stop_s: float = _p(
        30.0, "SIGTERM -> task stopped (job checkpoints, exits); ECS stopTimeout default (§5)"
    )
    checkpoint_interval_s: float = _p(
        600.0, "jobs checkpoint this often; work since then is lost on a stop; ASSUMPTION"
    )
    # The stack's own price table (cdk_app/prices.py), which per-job costs use too.
    price_vcpu_h: float = _p(ON_DEMAND["vcpu_hour"], "on-demand $/vCPU-hour, us-east-1 Linux/x86 (§5, vantage.sh)")
    price_gb_h: float = _p(ON_DEMAND["gb_hour"], "on-demand $/GB-hour, us-east-1 Linux/x86 (§5, vantage.sh)")
    spot_multiple: float = _p(SPOT_FRACTION, "Fargate Spot price / on-demand; ASSUMPTION ('up to 70% off', §5)")
    min_billed_s: float = _p(60.0, "per-second billing, 1-minute minimum per task (§5)")
    # --- SQS metrics, CloudWatch alarms, events (§3) ------------------------------------
    metric_period_s: float = _p(60.0, "SQS/ECS metrics reach CloudWatch once a minute (§3)")
    metric_lag_s: float = _p(60.0, "lag of an active queue's metric; NOT FOUND, ASSUMPTION (table)")
    idle_wake_lag_s: float = _p(300.0, "extra metric lag after a queue idle > queue_idle_s (§3: up to 15 min)")
    queue_idle_s: float = _p(21600.0, "a queue is 'active' for 6 h after any message or API call (§3)")
    alarm_eval_s: float = _p(60.0, "alarms on 60 s metrics are evaluated each minute (§3, unverified)")
    queue_read_lag_s: float = _p(
        0.0,
        "live GetQueueAttributes counts are those of this many s ago; ASSUMPTION (SQS API reference: the "
        "approximate counts 'may not achieve consistency until at least 1 minute after the producers stop "
        "sending'); sweep it",
    )
    event_to_lambda_s: float = _p(1.0, "alarm/task event -> EventBridge -> Lambda start; ASSUMPTION (§3)")
    lambda_init_s: float = _p(0.3, "Lambda init, Python + boto3, every invocation treated as cold (§7)")
    # --- Lambda SQS event source (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html)
    esm_initial: int = _p(5, "SQS event source: starts with 5 concurrent batches (Lambda docs)")
    esm_ramp_per_min: float = _p(300.0, "SQS event source adds up to 300 concurrent batches per minute (Lambda docs)")
    esm_max: int = _p(1000, "SQS event source: at most 1,000 concurrent batches (Lambda docs)")
    esm_max_concurrency: int = _p(
        ESM.max_concurrency,
        "submitter event source MaximumConcurrency, 0 = unset (read from cdk_app/submitter_function.py; "
        "Lambda ScalingConfig: 2..1000)",
    )
    esm_batch: int = _p(ESM.batch_size, "submitter batch size (read from cdk_app/submitter_function.py)")
    esm_window_s: float = _p(
        ESM.max_batching_window_s, "submitter maximum batching window (read from cdk_app/submitter_function.py)"
    )
    sdk_max_attempts: int = _p(4, "SDK attempts per call: standard mode, 1 + 3 retries (lambdas/aws/clients.py)")
    sdk_max_backoff_s: float = _p(20.0, "boto3 'standard' retry mode: backoff cap, full jitter, base 2 (guide)")
    # --- This project: read from cdk_app/config.py's AppConfig defaults (bench/deployment.py) ---
    max_tasks: int = _p(500, "cap for every policy (MAX_WORKERS, MAX_CONCURRENT_TASKS, peers' max); bench choice")
    scale_in_grace_s: float = _p(float(STACK.scale_in_grace_seconds), "scale_in_grace_seconds (cdk_app/config.py)")
    reconcile_s: float = _p(60.0 * STACK.reconcile_minutes, "scaler schedule (cdk_app/config.py reconcile_minutes)")
    nudge_on_submit: int = _p(1, "1: a Scale Nudge follows each submit (scaler/events.py); 0: plain SQS SendMessage")
    backlog_alarm_messages: int = _p(
        STACK.backlog_alarm_messages, "backlog alarm threshold: visible >= this (cdk_app/config.py)"
    )
    backlog_alarm_points: int = _p(
        1, "backlog alarm: breaching 1-minute Maximum datapoints needed (evaluation_periods, cdk_app/alarms.py)"
    )
    spot_weight: int = _p(STACK.spot_weight, "cluster default strategy: FARGATE_SPOT weight (cdk_app/config.py)")
    on_demand_weight: int = _p(STACK.on_demand_weight, "cluster default strategy: FARGATE weight (cdk_app/config.py)")
    on_demand_base: int = _p(STACK.on_demand_base, "cluster default strategy: FARGATE base (cdk_app/config.py)")
    worker_max_receive: int = _p(
        STACK.worker_max_receive_count, "worker queue maxReceiveCount (cdk_app/config.py worker_max_receive_count)"
    )
    dispatch_max_receive: int = _p(
        STACK.dispatch_max_receive_count,
        "dispatch queue maxReceiveCount (cdk_app/config.py dispatch_max_receive_count)",
    )
    worker_visibility_s: float = _p(
        float(STACK.queue_visibility_seconds), "worker queue visibility: 3 heartbeats (cdk_app/config.py)"
    )
    dispatch_visibility_s: float = _p(360.0, "dispatch queue visibility: 6 x submitter timeout (cdk_app/stack.py)")
    # --- Peers ---------------------------------------------------------------------------
    peer_visibility_s: float = _p(30.0, "peers' queue visibility (QPFS default, §3); worker heartbeats assumed")
    peer_max_receive: int = _p(3, "peers' maxReceiveCount (QPFS default, §3)")
    tt_target: float = _p(75.0, "classic example: CPU target tracking target % (issue)")
    tt_min: int = _p(1, "classic example: minimum tasks (issue)")
    tt_out_points: int = _p(3, "target tracking AlarmHigh: 3 x 1 min above target (§3)")
    tt_in_points: int = _p(15, "target tracking AlarmLow: 15 x 1 min below 90% of target (§3)")
    tt_cooldown_s: float = _p(300.0, "target tracking scale-out and scale-in cooldowns (§3)")
    qpfs_period_s: float = _p(300.0, "QPFS alarm: ApproximateNumberOfMessagesVisible, Maximum over 300 s (§3)")
    qpfs_cpu_target: float = _p(50.0, "QPFS CPU target tracking % (§3)")
    qpfs_min: int = _p(1, "QPFS minScalingCapacity default (§3)")
    qpfs_cooldown_s: float = _p(300.0, "step scaling cooldown when unset (§3)")
    keda_poll_s: float = _p(30.0, "KEDA pollingInterval (§4)")
    keda_queue_length: int = _p(1, "KEDA queueLength target (1 job per task; KEDA default 5) (§4, table)")
    keda_cooldown_s: float = _p(300.0, "KEDA cooldownPeriod: to 0 replicas after this long inactive (§4)")
    hpa_down_window_s: float = _p(300.0, "HPA scale-down stabilization window (§4)")
    hpa_up_pods: int = _p(4, "HPA scale-up: max(4 pods, 100%) per 60 s (§4)")
    # --- Workloads (§6) ------------------------------------------------------------------
    job_vcpu: float = _p(STACK.training_cpu / 1024, "synthetic jobs: vCPU (training_cpu, cdk_app/config.py)")
    job_gb: float = _p(STACK.training_memory / 1024, "synthetic jobs: GB (training_memory, cdk_app/config.py)")
    short_median_s: float = _p(206.0, "short-job mix: median duration (Helios, §6)")
    short_sigma: float = _p(1.0, "short-job mix: lognormal sigma; ASSUMPTION (only the median is published)")
    short_cap_s: float = _p(14400.0, "short-job mix: duration cap")
    philly_cap_s: float = _p(86400.0, "heavy-tail mix: Philly CDF capped at 1 day (96.5th percentile, §6)")
    steady_per_h: float = _p(240.0, "steady: Poisson arrivals per hour; ASSUMPTION")
    bursty_per_h: float = _p(120.0, "bursty: mean background arrivals per hour; ASSUMPTION")
    diurnal_amplitude: float = _p(0.3, "bursty: diurnal amplitude (table: 0-30%)")
    bursts_per_day: float = _p(12.0, "bursty: sweeps per day (Poisson); ASSUMPTION, NOT FOUND (§6)")
    burst_min: int = _p(20, "bursty: smallest sweep (jobs); ASSUMPTION")
    burst_max: int = _p(200, "bursty: largest sweep (jobs); ASSUMPTION")
    burst_spread_s: float = _p(60.0, "bursty: a sweep's jobs arrive within this many seconds; ASSUMPTION")
    heavy_per_h: float = _p(30.0, "heavy_tail: Poisson arrivals per hour; ASSUMPTION")
    burst500_jobs: int = _p(500, "burst500: jobs submitted at once (the design card's burst case)")

    @property
    def start_sigma(self) -> float:
        return math.log(self.start_p99_ratio) / 2.3263478740408408  # z(0.99)

    @property
    def spot_stop_s(self) -> float:
        """A Spot task stops once its job has checkpointed and exited, at the latest when the notice ends."""
        return min(self.sigterm_to_stop_s, self.spot_notice_s)

    @property
    def trigger_s(self) -> float:
        """Event -> Lambda handler running (EventBridge or SQS poller, plus init)."""
        return self.event_to_lambda_s + self.lambda_init_s

    def start_latency(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """Fargate RunTask -> RUNNING: lognormal around the median, plus image-size time."""
        median = self.start_median_s + self.image_extra_gb * self.start_s_per_gb
        return median * np.exp(self.start_sigma * rng.standard_normal(size))

    def price_per_s(self, vcpu: float, gb: float, spot: bool) -> float:
        hourly = vcpu * self.price_vcpu_h + gb * self.price_gb_h
        return hourly * (self.spot_multiple if spot else 1.0) / 3600.0

    def with_overrides(self, pairs: list[str]) -> Params:
        """Apply ``name=value`` overrides; unknown names and bad values fail naming the parameter."""
        types = {f.name: {"float": float, "int": int}[str(f.type)] for f in fields(self)}
        changes: dict[str, Any] = {}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            name = name.strip()
            if not sep or name not in types:
                raise ValueError(f"--set {pair!r}: unknown parameter (see --params)")
            try:
                changes[name] = types[name](raw)
            except ValueError:
                kind = "an integer" if types[name] is int else "a number"
                raise ValueError(f"--set {pair!r}: {name} needs {kind}") from None
        return replace(self, **changes)

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str]]:
        """(name, default, documentation) for every parameter."""
        return [(f.name, f.default, f.metadata["doc"]) for f in fields(cls)]


class TokenBucket:
    """An AWS-style rate limit: ``burst`` tokens, refilled at ``rate`` per second."""

    __slots__ = ("_t", "_tokens", "burst", "rate")

    def __init__(self, burst: float, rate: float) -> None:
        self.burst, self.rate = float(burst), float(rate)
        self._tokens, self._t = float(burst), 0.0

    def _refill(self, now: float) -> None:
        if now > self._t:
            self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
            self._t = now

    def wait(self, now: float, n: float = 1) -> float:
        """Seconds until ``n`` tokens are there (0 when they are there now)."""
        self._refill(now)
        return max(0.0, (n - self._tokens) / self.rate)

    def take(self, now: float, n: float = 1) -> None:
        self._refill(now)
        self._tokens -= n


def take_all(now: float, buckets: list[TokenBucket], n: float = 1) -> float:
    """Take ``n`` from every bucket if all have them (returns 0); else take none, return the wait."""
    wait = max(b.wait(now, n) for b in buckets)
    if wait <= 1e-9:
        for b in buckets:
            b.take(now, n)
        return 0.0
    return wait
