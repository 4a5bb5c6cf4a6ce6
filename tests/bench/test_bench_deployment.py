"""The benchmark models this repository's deployment: its settings come from the stack's config."""

from __future__ import annotations

import pytest

from bench.models import Params
from bench.runner import simulate
from bench.workloads import build
from cdk_app.config import AppConfig


def test_defaults_follow_the_stack() -> None:
    stack, p = AppConfig(), Params()
    assert (p.esm_batch, p.esm_window_s, p.esm_max_concurrency) == (
        stack.submitter_batch_size,
        stack.submitter_batching_window_seconds,
        stack.submitter_max_concurrency,
    )
    assert (p.scale_in_grace_s, p.reconcile_s) == (stack.scale_in_grace_seconds, 60 * stack.reconcile_minutes)
    assert (p.spot_weight, p.on_demand_weight, p.on_demand_base) == (
        stack.spot_weight,
        stack.on_demand_weight,
        stack.on_demand_base,
    )
    assert (p.worker_max_receive, p.dispatch_max_receive) == (
        stack.worker_max_receive_count,
        stack.dispatch_max_receive_count,
    )


@pytest.mark.parametrize("limit", [3, 5, 10])
def test_maximum_concurrency_caps_the_submitter_batches(limit: int) -> None:
    p = Params().with_overrides([f"esm_max_concurrency={limit}"])
    r = simulate("ours_dedicated", build("burst500", p, 7, 1.0), p, 7)
    assert r.peak_invocations == limit  # 500 jobs: every allowed batch is used, none more
    assert (r.completed, r.lost) == (r.submitted, 0)


def test_without_maximum_concurrency_the_event_source_ramps_up() -> None:
    p = Params().with_overrides(["esm_max_concurrency=0"])
    r = simulate("ours_dedicated", build("burst500", p, 7, 1.0), p, 7)
    assert r.peak_invocations > p.esm_initial
