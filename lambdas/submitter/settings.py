"""Submitter settings: read once from the environment, validated, frozen."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from aws.settings import Env
from jobs.errors import ConfigError
from jobs.jobspec import MAX_NODES


@dataclass(frozen=True)
class SubmitterSettings:
    table_name: str
    cluster: str
    dispatch_queue_url: str
    dispatch_dlq_url: str
    task_definitions: Mapping[str, str]
    gpu_task_definitions: Mapping[str, str]
    gpu_capacity_provider: str
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]
    max_concurrent_tasks: int
    artifacts_bucket: str
    worker_queue_url: str
    """Where the children of a non-dedicated array job or sweep go (empty: such jobs are rejected)."""
    max_nodes: int
    """Most ranks a distributed job may ask for (JobSpec.nodes)."""

    @property
    def gpu_enabled(self) -> bool:
        return bool(self.gpu_capacity_provider)

    @property
    def task_families(self) -> tuple[str, ...]:
        """Distinct task-definition families of training tasks (what ListTasks counts against the cap)."""
        arns = [*self.task_definitions.values(), *self.gpu_task_definitions.values()]
        return tuple(sorted({task_family(arn) for arn in arns}))

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SubmitterSettings:
        env = Env(environ)
        gpu_provider = env.text("GPU_CAPACITY_PROVIDER", allow_empty=True)
        gpu_defs = env.json_str_map("GPU_TASK_DEFINITIONS")
        if gpu_provider and not gpu_defs:
            raise ConfigError("GPU_TASK_DEFINITIONS", "must name at least one image when GPU_CAPACITY_PROVIDER is set")
        if gpu_defs and not gpu_provider:
            raise ConfigError("GPU_CAPACITY_PROVIDER", "must be set when GPU_TASK_DEFINITIONS is not empty")
        return cls(
            table_name=env.text("JOBS_TABLE_NAME"),
            cluster=env.text("CLUSTER_NAME"),
            dispatch_queue_url=env.text("DISPATCH_QUEUE_URL"),
            dispatch_dlq_url=env.text("DISPATCH_DLQ_URL"),
            task_definitions=env.json_str_map("TASK_DEFINITIONS", required_keys=("default",)),
            gpu_task_definitions=gpu_defs,
            gpu_capacity_provider=gpu_provider,
            subnet_ids=env.csv("SUBNET_IDS"),
            security_group_ids=env.csv("SECURITY_GROUP_IDS"),
            max_concurrent_tasks=env.integer("MAX_CONCURRENT_TASKS", minimum=1, maximum=10_000),
            artifacts_bucket=env.text("ARTIFACTS_BUCKET"),
            worker_queue_url=environ.get("WORKER_QUEUE_URL", "").strip(),
            max_nodes=env.integer("MAX_NODES", minimum=1, maximum=MAX_NODES),
        )


def task_family(task_definition: str) -> str:
    """`arn:...:task-definition/train:3` or `train:3` or `train` -> `train`."""
    name = task_definition.rsplit("task-definition/", 1)[-1]
    return name.split(":", 1)[0]


@functools.cache
def get_settings() -> SubmitterSettings:
    return SubmitterSettings.from_env(os.environ)
