"""Task-events settings: read once from the environment, validated, frozen."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass

from aws.settings import Env
from jobs.cost import Rate, parse_prices
from jobs.errors import ConfigError


@dataclass(frozen=True)
class TaskEventsSettings:
    table_name: str
    cluster: str
    dispatch_queue_url: str
    prices: Mapping[str, Rate] | None = None
    """FARGATE_PRICES: this region's Fargate price table (jobs.cost); unset = usage recorded, no dollars."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TaskEventsSettings:
        env = Env(environ)
        return cls(
            table_name=env.text("JOBS_TABLE_NAME"),
            cluster=env.text("CLUSTER_NAME"),
            dispatch_queue_url=env.text("DISPATCH_QUEUE_URL"),
            prices=_prices(environ.get("FARGATE_PRICES", "")),
        )


def _prices(text: str) -> dict[str, Rate] | None:
    if not text.strip():
        return None
    try:
        return parse_prices(text)
    except ValueError as exc:
        raise ConfigError("FARGATE_PRICES", str(exc)) from None


@functools.cache
def get_settings() -> TaskEventsSettings:
    return TaskEventsSettings.from_env(os.environ)
