"""Scaler settings: read once from the environment, validated, frozen.

A stdlib dataclass instead of a pydantic model: six variables do not need pydantic,
and leaving it out saves ~70 ms of cold import (measured with ``python -X importtime``).
Every problem raises ``ConfigError`` naming the variable.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from aws.settings import Env
from jobs.errors import ConfigError
from lifecycle.scaling_policy import ScalingConfig

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
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        env = Env(environ)
        min_workers = env.integer_between("MIN_WORKERS", 0, MAX_TASKS_PER_SERVICE)
        max_workers = env.integer_between("MAX_WORKERS", 0, MAX_TASKS_PER_SERVICE)
        if max_workers < min_workers:
            raise ConfigError("MAX_WORKERS", f"must be >= MIN_WORKERS ({min_workers}), got {max_workers}")
        queue_url = env.text("WORKER_QUEUE_URL")
        if not queue_url.startswith(("https://", "http://")):
            raise ConfigError("WORKER_QUEUE_URL", f"must be an SQS queue URL, got {queue_url!r}")
        return cls(
            cluster_name=env.text("CLUSTER_NAME"),
            service_name=env.text("WORKER_SERVICE_NAME"),
            queue_url=queue_url,
            metrics_namespace=env.text("POWERTOOLS_METRICS_NAMESPACE"),
            scaling=ScalingConfig(
                min_tasks=min_workers,
                max_tasks=max_workers,
                jobs_per_task=env.integer_between("JOBS_PER_WORKER", 1, MAX_JOBS_PER_WORKER),
                scale_in_grace_s=env.seconds("SCALE_IN_GRACE_SECONDS", maximum=MAX_GRACE_SECONDS),
            ),
        )


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from ``os.environ`` on first use (never at import)."""
    return Settings.from_env(os.environ)
