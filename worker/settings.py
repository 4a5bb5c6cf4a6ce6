"""Worker configuration: environment variables only, validated once at start (every problem reported)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from aws.settings import Env
from jobs.errors import ConfigError

T = TypeVar("T")

MAX_GRACE_SECONDS = 110
"""Fargate Spot sends SIGTERM 2 minutes before stopping a task and a container's stopTimeout is at most 120 s:
the grace leaves the worker a few seconds to requeue and record before SIGKILL."""
MAX_VISIBILITY_SECONDS = 43200
"""SQS: a visibility timeout is at most 12 hours."""


class SettingsError(Exception):
    """One or more invalid environment variables; ``problems`` names each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid worker configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class WorkerSettings:
    queue_url: str
    """WORKER_QUEUE_URL: the queue to long-poll."""
    table_name: str
    """JOBS_TABLE_NAME: the jobs table."""
    artifacts_bucket: str
    """ARTIFACTS_BUCKET: default checkpoint and artifact locations (s3://<bucket>/jobs/<job_id>/)."""
    dlq_url: str | None = None
    """WORKER_DLQ_URL: where rejected (malformed) messages go with their reason; unset = record and drop."""
    concurrency: int = 1
    """WORKER_CONCURRENCY: jobs run at once (1..16)."""
    wait_seconds: int = 20
    """WORKER_WAIT_SECONDS: long-poll wait (0..20)."""
    visibility_seconds: int = 300
    """WORKER_VISIBILITY_SECONDS: how long a received message stays hidden; renewed by every heartbeat."""
    heartbeat_seconds: int = 60
    """WORKER_HEARTBEAT_SECONDS: visibility extension and job-lease period (< visibility / 2)."""
    grace_seconds: int = 90
    """WORKER_SHUTDOWN_GRACE_SECONDS: time a job gets to checkpoint after SIGTERM (0..110, < the Spot notice)."""
    protection_minutes: int = 60
    """WORKER_PROTECTION_MINUTES: scale-in protection period, renewed every half period while busy (1..2880)."""
    retry_delay_seconds: int = 30
    """WORKER_RETRY_DELAY_SECONDS: delay before a failed job's next attempt, doubled per failure (max 900)."""
    max_jobs: int = 0
    """WORKER_MAX_JOBS: exit after this many jobs (0 = never; for local runs)."""
    exit_when_idle: bool = False
    """WORKER_EXIT_WHEN_IDLE: exit when a long poll returns nothing (local runs, tests)."""
    job_dir: str = ""
    """WORKER_JOB_DIR: parent directory of each job's scratch working directory (default: the temp dir)."""
    agent_uri: str | None = None
    """ECS_AGENT_URI: injected by ECS; unset means not on ECS (protection skipped)."""
    metadata_uri: str | None = None
    """ECS_CONTAINER_METADATA_URI_V4: injected by ECS; used once to learn the task ARN."""
    log_level: str = "INFO"
    """LOG_LEVEL."""

    @property
    def lease_stale_seconds(self) -> int:
        """A RUNNING job whose lease (updated_at) is older than this was lost by its worker."""
        return max(2 * self.visibility_seconds, 4 * self.heartbeat_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerSettings:
        """Read and validate; raises SettingsError listing every problem."""
        env = Env(environ)
        problems: list[str] = []

        def get(read: Callable[[], T], default: T, name: str | None = None) -> T:
            if name is not None and not environ.get(name, "").strip():
                return default
            try:
                return read()
            except ConfigError as exc:
                problems.append(str(exc))
                return default

        def optional_int(name: str, default: int, low: int, high: int) -> int:
            return get(lambda: env.integer(name, minimum=low, maximum=high), default, name)

        queue_url = get(lambda: env.text("WORKER_QUEUE_URL"), "")
        table = get(lambda: env.text("JOBS_TABLE_NAME"), "")
        bucket = get(lambda: env.text("ARTIFACTS_BUCKET"), "")
        for name, value in (("WORKER_QUEUE_URL", queue_url), ("WORKER_DLQ_URL", environ.get("WORKER_DLQ_URL", ""))):
            if value and not value.startswith(("https://", "http://")):
                problems.append(f"{name}: must be a queue URL (https://sqs...), got {value!r}")
        visibility = optional_int("WORKER_VISIBILITY_SECONDS", cls.visibility_seconds, 30, MAX_VISIBILITY_SECONDS)
        heartbeat = optional_int("WORKER_HEARTBEAT_SECONDS", min(cls.heartbeat_seconds, visibility // 3), 1, 3600)
        if heartbeat * 2 > visibility:
            problems.append(
                f"WORKER_HEARTBEAT_SECONDS: must be at most half of WORKER_VISIBILITY_SECONDS ({visibility}), "
                f"got {heartbeat}"
            )
        idle_text = environ.get("WORKER_EXIT_WHEN_IDLE", "").strip().lower()
        if idle_text not in ("", "true", "false", "1", "0", "yes", "no"):
            problems.append(f"WORKER_EXIT_WHEN_IDLE: must be true or false, got {idle_text!r}")
        log_level = environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            problems.append(f"LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        settings = cls(
            queue_url=queue_url,
            table_name=table,
            artifacts_bucket=bucket,
            dlq_url=environ.get("WORKER_DLQ_URL", "").strip() or None,
            concurrency=optional_int("WORKER_CONCURRENCY", 1, 1, 16),
            wait_seconds=optional_int("WORKER_WAIT_SECONDS", 20, 0, 20),
            visibility_seconds=visibility,
            heartbeat_seconds=heartbeat,
            grace_seconds=optional_int("WORKER_SHUTDOWN_GRACE_SECONDS", 90, 0, MAX_GRACE_SECONDS),
            protection_minutes=optional_int("WORKER_PROTECTION_MINUTES", 60, 1, 2880),
            retry_delay_seconds=optional_int("WORKER_RETRY_DELAY_SECONDS", 30, 0, 900),
            max_jobs=optional_int("WORKER_MAX_JOBS", 0, 0, 1_000_000),
            exit_when_idle=idle_text in ("true", "1", "yes"),
            job_dir=environ.get("WORKER_JOB_DIR", "").strip() or tempfile.gettempdir(),
            agent_uri=environ.get("ECS_AGENT_URI", "").strip() or None,
            metadata_uri=environ.get("ECS_CONTAINER_METADATA_URI_V4", "").strip() or None,
            log_level=log_level,
        )
        if problems:
            raise SettingsError(problems)
        return settings
