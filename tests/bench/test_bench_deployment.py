"""The benchmark models the deployment the stack defines: settings read from cdk_app, not copied."""

from __future__ import annotations

import pytest

from bench.deployment import SUBMITTER_SOURCE, DeploymentError, EventSource, read_event_source
from bench.models import Params
from bench.runner import simulate
from bench.workloads import build
from cdk_app.config import AppConfig

SOURCE = """
fn.add_event_source(
    event_sources.SqsEventSource(
        queue,
        batch_size=7,
        max_batching_window=Duration.millis(500),
        report_batch_item_failures=True,
        max_concurrency=3,
    )
)
"""


def test_event_source_settings_are_read_from_the_construct_source() -> None:
    assert read_event_source(SOURCE) == EventSource(batch_size=7, max_batching_window_s=0.5, max_concurrency=3)
    bare = "SqsEventSource(queue, max_batching_window=Duration.seconds(2))"
    assert read_event_source(bare) == EventSource(batch_size=10, max_batching_window_s=2.0, max_concurrency=0)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1", "expected one SqsEventSource(...) call, found 0"),
        ("SqsEventSource(q)\nSqsEventSource(q)", "found 2"),
        ("SqsEventSource(q, max_concurrency=LIMIT)", "line 1: max_concurrency must be an integer literal"),
        ("SqsEventSource(q,\n  max_batching_window=window)", "line 2: max_batching_window must be Duration"),
    ],
)
def test_a_form_the_reader_does_not_understand_fails_naming_the_file(source: str, message: str) -> None:
    with pytest.raises(DeploymentError) as caught:
        read_event_source(source, "submitter.py")
    assert str(caught.value).startswith("submitter.py")
    assert message in str(caught.value)


def test_defaults_follow_the_stack() -> None:
    deployed, stack, p = read_event_source(SUBMITTER_SOURCE.read_text()), AppConfig(), Params()
    assert (p.esm_batch, p.esm_window_s, p.esm_max_concurrency) == (
        deployed.batch_size,
        deployed.max_batching_window_s,
        deployed.max_concurrency,
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
