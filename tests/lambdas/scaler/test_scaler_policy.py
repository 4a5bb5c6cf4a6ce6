"""Unit tests of the pure scaling policy: no mocks, no AWS, time is a parameter."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import sys

import pytest

from lifecycle import scaling_policy as policy
from lifecycle.scaling_policy import Decision, QueueState, Reason, ScalingConfig, ServiceState, decide

NOW = 1_764_064_800.0  # 2025-11-25T10:00:00Z
CFG = ScalingConfig(min_tasks=0, max_tasks=10, jobs_per_task=1, scale_in_grace_s=300)


def q(visible: int = 0, in_flight: int = 0, delayed: int = 0) -> QueueState:
    return QueueState(visible=visible, in_flight=in_flight, delayed=delayed)


def svc(desired: int, running: int | None = None, pending: int = 0) -> ServiceState:
    return ServiceState(desired=desired, running=desired if running is None else running, pending=pending)


def run(
    queue: QueueState,
    service: ServiceState,
    config: ScalingConfig = CFG,
    *,
    now: float = NOW,
    surplus_since: float | None = None,
) -> Decision:
    return decide(queue, service, config, now=now, surplus_since=surplus_since)


# --- scale out ------------------------------------------------------------------------------


def test_one_message_starts_a_worker_from_zero() -> None:
    assert run(q(visible=1), svc(0)) == Decision(1, "backlog", None)


def test_scale_out_counts_in_flight_messages() -> None:
    assert run(q(visible=2, in_flight=3), svc(3)).desired == 5


def test_scale_out_rounds_up_by_jobs_per_task() -> None:
    cfg = ScalingConfig(min_tasks=0, max_tasks=10, jobs_per_task=4, scale_in_grace_s=300)
    assert run(q(visible=5), svc(0), cfg).desired == 2
    assert run(q(visible=8), svc(0), cfg).desired == 2
    assert run(q(visible=9), svc(0), cfg).desired == 3


def test_scale_out_is_capped_at_max() -> None:
    assert run(q(visible=500), svc(2)) == Decision(10, Reason.BACKLOG, None)


def test_scale_out_happens_at_once_even_inside_a_grace_period_and_stops_the_clock() -> None:
    decision = run(q(visible=7), svc(4), surplus_since=NOW - 100)
    assert decision == Decision(7, Reason.BACKLOG, None)


def test_delayed_messages_alone_do_not_start_workers() -> None:
    assert run(q(delayed=5), svc(0)) == Decision(0, Reason.STEADY, None)


def test_pending_tasks_count_as_capacity_so_a_slow_start_does_not_scale_out_again() -> None:
    assert run(q(visible=3), svc(3, running=0, pending=3)) == Decision(3, Reason.STEADY, None)


# --- bounds ---------------------------------------------------------------------------------


def test_desired_below_min_is_raised_at_once() -> None:
    cfg = ScalingConfig(min_tasks=2, max_tasks=10, jobs_per_task=1, scale_in_grace_s=300)
    assert run(q(), svc(0), cfg) == Decision(2, Reason.BELOW_MIN, None)


def test_desired_above_max_is_lowered_at_once_without_a_grace_period() -> None:
    assert run(q(visible=50), svc(25)) == Decision(10, Reason.ABOVE_MAX, None)
    assert run(q(), svc(25), surplus_since=NOW) == Decision(10, Reason.ABOVE_MAX, None)


def test_min_workers_are_kept_on_an_empty_queue() -> None:
    cfg = ScalingConfig(min_tasks=1, max_tasks=10, jobs_per_task=1, scale_in_grace_s=0)
    assert run(q(), svc(1), cfg) == Decision(1, Reason.STEADY, None)
    assert run(q(), svc(4), cfg).desired == 1


# --- scale in -------------------------------------------------------------------------------


def test_surplus_starts_the_clock_and_holds() -> None:
    assert run(q(), svc(5)) == Decision(5, Reason.GRACE_STARTED, NOW)


def test_surplus_holds_during_the_grace_period() -> None:
    since = NOW - 299.9
    assert run(q(), svc(5), surplus_since=since) == Decision(5, Reason.GRACE, since)


def test_surplus_scales_in_once_the_grace_period_is_over() -> None:
    assert run(q(), svc(5), surplus_since=NOW - 300) == Decision(0, Reason.SCALE_IN, None)


def test_scale_in_goes_down_to_what_the_queue_needs() -> None:
    assert run(q(visible=1, in_flight=2), svc(6), surplus_since=NOW - 301).desired == 3


def test_scale_in_never_goes_below_tasks_busy_with_jobs() -> None:
    cfg = ScalingConfig(min_tasks=0, max_tasks=10, jobs_per_task=2, scale_in_grace_s=60)
    decision = run(q(in_flight=5), svc(8), cfg, surplus_since=NOW - 61)
    assert decision == Decision(3, Reason.SCALE_IN, None)  # ceil(5 / 2) busy tasks


def test_delayed_messages_keep_their_workers_from_being_scaled_away() -> None:
    assert run(q(delayed=4), svc(6), surplus_since=NOW - 301) == Decision(4, Reason.SCALE_IN, None)
    assert run(q(delayed=4), svc(4)) == Decision(4, Reason.STEADY, None)


def test_delayed_reserve_is_capped_at_max() -> None:
    assert run(q(delayed=40), svc(10)) == Decision(10, Reason.STEADY, None)


def test_zero_grace_scales_in_at_once() -> None:
    cfg = ScalingConfig(min_tasks=0, max_tasks=10, jobs_per_task=1, scale_in_grace_s=0)
    assert run(q(), svc(3), cfg) == Decision(0, Reason.SCALE_IN, None)


def test_no_surplus_stops_the_clock() -> None:
    assert run(q(visible=2, in_flight=3), svc(5), surplus_since=NOW - 100) == Decision(5, Reason.STEADY, None)


def test_a_clock_from_the_future_restarts_now() -> None:
    assert run(q(), svc(5), surplus_since=NOW + 3600) == Decision(5, Reason.GRACE_STARTED, NOW)


def test_running_count_does_not_change_the_decision() -> None:
    a = run(q(visible=2), svc(5, running=0, pending=5), surplus_since=NOW - 10)
    b = run(q(visible=2), svc(5, running=5, pending=0), surplus_since=NOW - 10)
    assert a == b


# --- types and validation -------------------------------------------------------------------


def test_reasons_compare_equal_to_plain_strings() -> None:
    assert Reason.SCALE_IN == "scale_in"
    assert {str(r) for r in Reason} == {
        "backlog",
        "below_min",
        "above_max",
        "steady",
        "grace_started",
        "grace",
        "scale_in",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_tasks": -1}, "min_tasks"),
        ({"min_tasks": 5, "max_tasks": 4}, "max_tasks"),
        ({"jobs_per_task": 0}, "jobs_per_task"),
        ({"scale_in_grace_s": -1.0}, "scale_in_grace_s"),
        ({"scale_in_grace_s": math.nan}, "scale_in_grace_s"),
    ],
)
def test_invalid_config_is_rejected(kwargs: dict[str, float], message: str) -> None:
    base: dict[str, float] = {"min_tasks": 0, "max_tasks": 10, "jobs_per_task": 1, "scale_in_grace_s": 60}
    with pytest.raises(ValueError, match=message):
        ScalingConfig(**{**base, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["visible", "in_flight", "delayed"])
def test_negative_queue_counts_are_rejected(field: str) -> None:
    counts = {"visible": 0, "in_flight": 0, "delayed": 0, field: -1}
    with pytest.raises(ValueError, match=field):
        QueueState(**counts)


@pytest.mark.parametrize("field", ["desired", "running", "pending"])
def test_negative_service_counts_are_rejected(field: str) -> None:
    counts = {"desired": 0, "running": 0, "pending": 0, field: -1}
    with pytest.raises(ValueError, match=field):
        ServiceState(**counts)


def test_contract_api_is_exact() -> None:
    sig = inspect.signature(decide)
    assert list(sig.parameters) == ["queue", "service", "config", "now", "surplus_since"]
    assert sig.parameters["now"].kind is inspect.Parameter.KEYWORD_ONLY
    assert sig.parameters["surplus_since"].kind is inspect.Parameter.KEYWORD_ONLY
    expected: dict[type, list[str]] = {
        ScalingConfig: ["min_tasks", "max_tasks", "jobs_per_task", "scale_in_grace_s"],
        QueueState: ["visible", "in_flight", "delayed"],
        ServiceState: ["desired", "running", "pending"],
        Decision: ["desired", "reason", "surplus_since"],
    }
    for cls, names in expected.items():
        assert [f.name for f in dataclasses.fields(cls)] == names
        assert getattr(cls, "__dataclass_params__").frozen  # noqa: B009


def test_policy_imports_only_the_standard_library() -> None:
    tree = ast.parse(inspect.getsource(policy))
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
