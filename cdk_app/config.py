"""The app's one configuration object, built from CDK context and validated once.

Every key lives in `cdk.json` under the `autoscaler.` prefix and can be overridden on the
command line (`cdk deploy -c autoscaler.max_workers=20`). An unknown `autoscaler.` key or a
bad value fails synth with a message naming the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from cdk_app.prices import DEFAULT_PRICES, price_table_problem
from jobs.sizes import FARGATE_MEMORY, describe_memory_choices

PREFIX = "autoscaler."
ASSET_PREFIX = "asset:"


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """Validated settings for the whole stack (see README "Configuration")."""

    # Where to deploy (the account comes from the CLI's credentials at deploy time).
    region: str = "us-east-1"
    # Worker service (long-lived queue workers), owned by the scaler Lambda.
    min_workers: int = 0
    max_workers: int = 10
    jobs_per_worker: int = 1
    scale_in_grace_seconds: int = 300
    worker_cpu: int = 1024
    worker_memory: int = 2048
    worker_heartbeat_seconds: int = 60
    worker_stop_timeout_seconds: int = 120
    # Capacity: Spot first with an on-demand base (cluster default strategy).
    spot_weight: int = 4
    on_demand_weight: int = 1
    on_demand_base: int = 0
    # Dedicated training tasks launched by the submitter (one task per job).
    max_concurrent_tasks: int = 50
    # Distributed jobs (JobSpec `nodes`): most ranks one job may ask for; every rank counts against the cap.
    max_nodes: int = 8
    # The submitter's SQS event source. Concurrent batches beyond ~6 only add RunTask throttling
    # (`make bench`, burst500: 18.0 launches/s at 5, 20.0/s at 6, 19.6/s at 10; Fargate allows 20/s, aws-facts.md §2).
    submitter_batch_size: int = 10
    submitter_batching_window_seconds: int = 1
    submitter_max_concurrency: int = 6
    training_cpu: int = 1024
    training_memory: int = 2048
    training_images: Mapping[str, str] = field(default_factory=lambda: {"default": "asset:worker"})
    worker_image: str = "asset:worker"
    # Receives before a message goes to its DLQ. On the worker queue every attempt, heartbeat-lost lease and
    # interruption consumes a receive, so it needs far more room than the dispatch queue.
    worker_max_receive_count: int = 30
    dispatch_max_receive_count: int = 5
    # Optional GPU capacity: an EC2 Spot Auto Scaling group as a capacity provider.
    gpu_enabled: bool = False
    gpu_instance_types: tuple[str, ...] = ("g5.xlarge", "g4dn.xlarge")
    gpu_max_instances: int = 4
    # Model serving behind an ALB.
    serving_image: str = "asset:serving"
    serving_cpu: int = 512
    serving_memory: int = 1024
    serving_min_tasks: int = 2
    serving_max_tasks: int = 10
    serving_requests_per_target: int = 200
    serving_cpu_target_percent: int = 60
    serving_ingress_cidr: str = "0.0.0.0/0"
    # Alarms (humans get them through an SNS topic; the backlog alarm also triggers the scaler).
    alarm_email: str = ""
    backlog_alarm_messages: int = 1
    oldest_message_alarm_seconds: int = 3600
    serving_5xx_alarm_count: int = 10
    serving_latency_alarm_seconds: float = 2.0
    # Housekeeping.
    nat_gateways: int = 1
    log_retention_days: int = 30
    checkpoint_retention_days: int = 30
    reconcile_minutes: int = 1
    # Per-job cost: Fargate prices per region (USD per vCPU-hour and GB-hour; sources in cdk_app/prices.py).
    fargate_prices: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=lambda: DEFAULT_PRICES)
    powertools_layer_version: int = 27

    def __post_init__(self) -> None:
        _check(len(self.region.split("-")) >= 3, "region", "must be an AWS region name such as us-east-1")
        _check(self.min_workers >= 0, "min_workers", "must be >= 0")
        _check(self.max_workers >= max(1, self.min_workers), "max_workers", "must be >= max(1, min_workers)")
        _check(1 <= self.jobs_per_worker <= 16, "jobs_per_worker", "must be 1..16")
        _check(0 <= self.scale_in_grace_seconds <= 86400, "scale_in_grace_seconds", "must be 0..86400")
        _check_fargate_size("worker_cpu", self.worker_cpu, "worker_memory", self.worker_memory)
        _check_fargate_size("training_cpu", self.training_cpu, "training_memory", self.training_memory)
        _check_fargate_size("serving_cpu", self.serving_cpu, "serving_memory", self.serving_memory)
        _check(10 <= self.worker_heartbeat_seconds <= 900, "worker_heartbeat_seconds", "must be 10..900")
        # A Fargate Spot interruption gives 120 s; stopTimeout is capped at 120 s (aws-facts.md §5).
        _check(2 <= self.worker_stop_timeout_seconds <= 120, "worker_stop_timeout_seconds", "must be 2..120")
        _check(self.spot_weight >= 0 and self.on_demand_weight >= 0, "spot_weight", "weights must be >= 0")
        _check(
            self.spot_weight + self.on_demand_weight > 0,
            "spot_weight",
            "spot and on-demand weights are both 0",
        )
        _check(0 <= self.on_demand_base <= 100000, "on_demand_base", "must be 0..100000")
        _check(1 <= self.max_concurrent_tasks <= 5000, "max_concurrent_tasks", "must be 1..5000")
        _check(
            1 <= self.max_nodes <= min(64, self.max_concurrent_tasks),
            "max_nodes",
            "must be 1..64 and at most max_concurrent_tasks (a gang counts all its ranks against the cap)",
        )
        _check(1 <= self.submitter_batch_size <= 10, "submitter_batch_size", "must be 1..10 (one RunTask per job)")
        _check(
            0 <= self.submitter_batching_window_seconds <= 300,
            "submitter_batching_window_seconds",
            "must be 0..300 (Lambda's limit)",
        )
        # Lambda's MaximumConcurrency for SQS event sources is 2..1000.
        _check(2 <= self.submitter_max_concurrency <= 1000, "submitter_max_concurrency", "must be 2..1000")
        _check("default" in self.training_images, "training_images", "must have a 'default' entry")
        for name, image in self.training_images.items():
            _check(name.replace("-", "").replace("_", "").isalnum(), "training_images", f"bad name {name!r}")
            _check_image(f"training_images.{name}", image)
        _check_image("worker_image", self.worker_image)
        _check_image("serving_image", self.serving_image)
        _check(1 <= self.worker_max_receive_count <= 1000, "worker_max_receive_count", "must be 1..1000")
        _check(1 <= self.dispatch_max_receive_count <= 1000, "dispatch_max_receive_count", "must be 1..1000")
        _check(len(self.gpu_instance_types) > 0, "gpu_instance_types", "must name at least one instance type")
        _check(1 <= self.gpu_max_instances <= 1000, "gpu_max_instances", "must be 1..1000")
        _check(self.serving_min_tasks >= 2, "serving_min_tasks", "must be >= 2 (one per AZ)")
        _check(
            self.serving_max_tasks >= self.serving_min_tasks,
            "serving_max_tasks",
            "must be >= serving_min_tasks",
        )
        _check(self.serving_requests_per_target >= 1, "serving_requests_per_target", "must be >= 1")
        _check(10 <= self.serving_cpu_target_percent <= 90, "serving_cpu_target_percent", "must be 10..90")
        _check(
            self.serving_ingress_cidr.count("/") == 1,
            "serving_ingress_cidr",
            "must be a CIDR such as 0.0.0.0/0",
        )
        _check(
            self.alarm_email == "" or "@" in self.alarm_email,
            "alarm_email",
            "must be an e-mail address or ''",
        )
        _check(self.backlog_alarm_messages >= 1, "backlog_alarm_messages", "must be >= 1")
        _check(self.oldest_message_alarm_seconds >= 60, "oldest_message_alarm_seconds", "must be >= 60")
        _check(self.serving_5xx_alarm_count >= 1, "serving_5xx_alarm_count", "must be >= 1")
        _check(self.serving_latency_alarm_seconds > 0, "serving_latency_alarm_seconds", "must be > 0")
        _check(0 <= self.nat_gateways <= 2, "nat_gateways", "must be 0..2")
        _check(
            self.log_retention_days in _RETENTION_DAYS,
            "log_retention_days",
            f"must be one of {_RETENTION_DAYS}",
        )
        _check(self.checkpoint_retention_days >= 1, "checkpoint_retention_days", "must be >= 1")
        _check(1 <= self.reconcile_minutes <= 60, "reconcile_minutes", "must be 1..60")
        _check(self.powertools_layer_version >= 1, "powertools_layer_version", "must be >= 1")
        problem = price_table_problem(self.fargate_prices, self.region)
        _check(problem is None, "fargate_prices", str(problem))

    @property
    def queue_visibility_seconds(self) -> int:
        """Worker queue visibility: three heartbeats, so one late heartbeat never releases a job."""
        return 3 * self.worker_heartbeat_seconds

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> AppConfig:
        """Build the config from CDK context (`autoscaler.*` keys); strings are parsed as JSON."""
        defaults = cls()
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in context.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX) :]
            if name not in known:
                raise ConfigError(f"{key}: unknown setting (known: {', '.join(sorted(known))})")
            values[name] = _coerce(key, raw, getattr(defaults, name))
        try:
            return cls(**values)
        except ConfigError as error:
            raise ConfigError(f"{PREFIX}{error}") from None


_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _check_fargate_size(cpu_key: str, cpu: int, memory_key: str, memory: int) -> None:
    allowed = FARGATE_MEMORY.get(cpu)
    _check(allowed is not None, cpu_key, f"{cpu} is not a Fargate size (one of {sorted(FARGATE_MEMORY)})")
    assert allowed is not None
    _check(
        memory in allowed,
        memory_key,
        f"{memory} MiB does not fit {cpu} cpu units (allowed {describe_memory_choices(cpu)})",
    )


def _check_image(key: str, image: str) -> None:
    if image.startswith(ASSET_PREFIX):
        _check(
            image[len(ASSET_PREFIX) :] in ("worker", "serving"),
            key,
            "asset images are asset:worker or asset:serving",
        )
    else:
        _check(bool(image) and " " not in image, key, "must be an image URI or asset:worker / asset:serving")


def _coerce(key: str, raw: Any, expected: Any) -> Any:
    """Turn a context value (JSON from cdk.json, or a string from `-c`) into the type of `expected`."""
    if isinstance(raw, str) and not isinstance(expected, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(f"{key}: {raw!r} is not valid JSON for a {type(expected).__name__}") from None
    if isinstance(expected, bool):
        if not isinstance(raw, bool):
            raise ConfigError(f"{key}: expected true or false, got {raw!r}")
        return raw
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ConfigError(f"{key}: expected a number, got {raw!r}")
        if isinstance(expected, int) and raw != int(raw):
            raise ConfigError(f"{key}: expected a whole number, got {raw!r}")
        return type(expected)(raw)
    if isinstance(expected, tuple):
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise ConfigError(f"{key}: expected a list of strings, got {raw!r}")
        return tuple(raw)
    if key.endswith("fargate_prices"):
        return raw  # nested numbers, checked by AppConfig (cdk_app.prices)
    if isinstance(expected, Mapping):
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise ConfigError(f"{key}: expected an object of strings, got {raw!r}")
        return dict(raw)
    if not isinstance(raw, str):
        raise ConfigError(f"{key}: expected a string, got {raw!r}")
    return raw
