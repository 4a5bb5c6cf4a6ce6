"""Task-events settings: read once from the environment, validated, frozen."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from common.settings import Env


@dataclass(frozen=True)
class TaskEventsSettings:
    table_name: str
    cluster: str
    dispatch_queue_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TaskEventsSettings:
        env = Env(environ)
        return cls(
            table_name=env.text("JOBS_TABLE_NAME"),
            cluster=env.text("CLUSTER_NAME"),
            dispatch_queue_url=env.text("DISPATCH_QUEUE_URL"),
        )


@functools.cache
def get_settings() -> TaskEventsSettings:
    return TaskEventsSettings.from_env(os.environ)
