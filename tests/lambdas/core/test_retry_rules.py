"""Retry rules on each kind of stop (pure): user rules first, then the built-in defaults, then RETRY."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.errors import JobSpecInvalid
from jobs.jobspec import parse_job_spec
from jobs.retry_rules import Stop, evaluate
from jobs.sizes import memory_advice

RULES = [
    {"exit_code": "3", "action": "EXIT"},
    {"reason": "*NCCL*", "action": "retry"},
    {"exit_code": "1?", "stop_code": "EssentialContainerExited", "action": "EXIT"},
    {"exit_code": 137, "reason": "*expected*", "action": "RETRY"},
]
SPEC = parse_job_spec({"command": ["python", "t.py"], "cpu": 1024, "memory": 2048, "retry_rules": RULES})


def verdict(
    exit_code: int | None, stop_code: str | None = "EssentialContainerExited", reason: str | None = None
) -> Any:
    return evaluate(
        SPEC.retry_rules, Stop(exit_code, stop_code, reason), oom_advice=memory_advice(SPEC.cpu, SPEC.memory)
    )


@pytest.mark.parametrize(
    ("stop", "action", "why"),
    [
        ((3,), "EXIT", "retry_rules[0] matched: EXIT"),
        ((2, "EssentialContainerExited", "NCCL timeout"), "RETRY", "retry_rules[1] matched: RETRY"),
        ((12,), "EXIT", "retry_rules[2] matched"),
        ((12, "TaskFailedToStart"), "RETRY", ""),  # rule 2 needs both exit code and stop code
        ((137, None, "an expected kill"), "RETRY", "retry_rules[3] matched"),  # a user rule beats the default
        ((137,), "EXIT", "out of memory: raise `memory` in the job spec (now 2048 MiB; allowed for cpu 1024: 2048"),
        ((None, "EssentialContainerExited", "OutOfMemoryError: Container killed"), "EXIT", "out of memory"),
        ((None, "TaskFailedToStart", "CannotPullContainerError: not found"), "EXIT", "image could not be pulled"),
        ((2,), "RETRY", ""),
        ((None, None, None), "RETRY", ""),
    ],
)
def test_each_kind_of_stop(stop: tuple[Any, ...], action: str, why: str) -> None:
    result = verdict(*stop)
    assert result.action == action and why in result.why


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"action": "RETRY"}, "retry_rules.0: give at least one of exit_code, stop_code, reason"),
        ({"action": "MAYBE", "exit_code": "1"}, "retry_rules.0.action: Input should be 'RETRY' or 'EXIT'"),
        ({"action": "EXIT", "exit_code": "one"}, "retry_rules.0.exit_code"),
        ({"action": "EXIT", "colour": "red"}, "unknown field 'colour'"),
    ],
)
def test_bad_rules_are_named(rule: dict[str, Any], error: str) -> None:
    with pytest.raises(JobSpecInvalid) as caught:
        parse_job_spec({"command": ["p"], "retry_rules": [rule]})
    assert error in str(caught.value)


def test_at_most_ten_rules() -> None:
    with pytest.raises(JobSpecInvalid, match="retry_rules: List should have at most 10 items"):
        parse_job_spec({"command": ["p"], "retry_rules": [{"exit_code": "1", "action": "EXIT"}] * 11})
