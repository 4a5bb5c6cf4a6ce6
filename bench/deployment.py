"""The modelled deployment's settings, read from this repository's stack rather than copied.

``STACK`` is ``cdk_app.config.AppConfig()``: the stack's defaults (plain Python, no CDK import), the same
values ``cdk.json`` starts from. ``SUBMITTER_EVENT_SOURCE`` is the submitter's SQS event source as
``cdk_app/submitter_function.py`` configures it from those settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdk_app.config import AppConfig


@dataclass(frozen=True)
class EventSource:
    """A Lambda SQS event source's settings."""

    batch_size: int
    max_batching_window_s: float
    max_concurrency: int  # 0: not set (MaximumConcurrency absent: up to 1,000 batches)

    @classmethod
    def of_submitter(cls, config: AppConfig) -> EventSource:
        return cls(
            batch_size=config.submitter_batch_size,
            max_batching_window_s=float(config.submitter_batching_window_seconds),
            max_concurrency=config.submitter_max_concurrency,
        )


STACK = AppConfig()
SUBMITTER_EVENT_SOURCE = EventSource.of_submitter(STACK)
