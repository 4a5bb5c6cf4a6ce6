"""Array/sweep specs and their expansion (pure), with every validation error."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.children import expand
from jobs.environment import array_environment
from jobs.errors import JobSpecInvalid
from jobs.jobspec import parse_job_spec

BASE: dict[str, Any] = {"job_id": "sw", "command": ["python", "train.py", "--lr={{lr}}", "--i={{index}}"]}


def spec(**fields: Any) -> Any:
    return parse_job_spec({**BASE, **fields})


def test_array_children_carry_their_index() -> None:
    children = expand(spec(array={"size": 3}, command=["python", "t.py", "{{index}}"]))
    assert [c.job_id for c in children] == ["sw-0", "sw-1", "sw-2"]
    assert [c.command[-1] for c in children] == ["0", "1", "2"]
    assert array_environment(children[2]) == {"TRAIN_ARRAY_INDEX": "2", "TRAIN_PARENT_ID": "sw"}
    assert children[0].array is None and children[0].parent_id == "sw"


def test_grid_sweep_sets_environment_and_templates() -> None:
    children = expand(spec(sweep={"grid": {"lr": [0.1, 0.01], "opt": ["adam", "sgd"], "amp": [True]}}))
    assert len(children) == 4
    assert children[1].environment == {"LR": "0.1", "OPT": "sgd", "AMP": "true"}
    assert children[3].command == ["python", "train.py", "--lr=0.01", "--i=3"]


def test_random_sweep_is_reproducible_by_seed() -> None:
    block = {"random": {"samples": 5, "params": {"lr": {"log_uniform": [1e-4, 1e-1]}, "d": {"choice": [1, 2]}}}}
    first = [c.environment for c in expand(spec(sweep={**block, "seed": 7}))]
    again = [c.environment for c in expand(spec(sweep={**block, "seed": 7}))]
    other = [c.environment for c in expand(spec(sweep={**block, "seed": 8}))]
    assert first == again and first != other and len(first) == 5
    assert all(1e-4 <= float(e["LR"]) <= 1e-1 and e["D"] in ("1", "2") for e in first)


def test_grid_times_random_samples() -> None:
    sweep = {"grid": {"lr": [0.1, 0.2]}, "random": {"samples": 3, "params": {"wd": {"uniform": [0, 1]}}}}
    children = expand(spec(sweep=sweep))
    assert [c.environment["LR"] for c in children] == ["0.1"] * 3 + ["0.2"] * 3


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"array": {"size": 1}}, "array.size: Input should be greater than or equal to 2"),
        ({"array": {"size": 10_001}}, "array.size: Input should be less than or equal to 10000"),
        ({"array": {"size": 2}, "sweep": {"grid": {"a": [1, 2]}}}, "sweep: give either array or sweep, not both"),
        ({"array": {"size": 2}, "job_id": "j" * 59}, "job_id: at most 58 characters for an array or sweep job"),
        ({"array": {"size": 2}, "parent_id": "p", "array_index": 0}, "parent_id: parent_id / array_index are set"),
        ({"parent_id": "p"}, "array_index: parent_id and array_index go together"),
        ({"sweep": {}}, "sweep: give a grid, random samples, or both"),
        (
            {"array": {"size": 2}, "image": "custom"},
            "image: the children of a non-dedicated array or sweep run on the worker queue, which runs the worker "
            "image only; set dedicated: true for 'custom'",
        ),
        ({"sweep": {"grid": {"a": [1]}}}, "sweep: makes 1 children; a sweep makes 2..10000"),
        ({"sweep": {"grid": {"a": list(range(101)), "b": list(range(100))}}}, "makes 10100 children"),
        ({"sweep": {"grid": {"index": [1, 2]}}}, "sweep.grid: parameter name 'index' must be"),
        ({"sweep": {"grid": {"a": []}}}, "sweep.grid.a: List should have at least 1 item"),
        ({"sweep": {"grid": {"lr": [1, 2]}}, "environment": {"LR": "x"}}, "environment: LR also set by the sweep"),
        (
            {"sweep": {"grid": {"a": [1]}, "random": {"samples": 2, "params": {"a": {"uniform": [0, 1]}}}}},
            "sweep: parameter(s) a are both in the grid and random",
        ),
        (
            {"sweep": {"random": {"samples": 2, "params": {"a": {"uniform": [1, 0]}}}}},
            "sweep.random.params.a: uniform: low must be below high",
        ),
        (
            {"sweep": {"random": {"samples": 2, "params": {"a": {"log_uniform": [0, 1]}}}}},
            "log_uniform: bounds must be > 0",
        ),
        (
            {"sweep": {"random": {"samples": 2, "params": {"a": {"uniform": [0, 1], "choice": [1]}}}}},
            "give exactly one of uniform, log_uniform, choice (got uniform, choice)",
        ),
    ],
)
def test_each_bad_block_is_named(fields: dict[str, Any], error: str) -> None:
    with pytest.raises(JobSpecInvalid) as caught:
        spec(**fields)
    assert error in str(caught.value)


def test_children_that_break_limits_are_reported_by_index() -> None:
    parent = spec(command=["x" * 1000, "{{p}}" * 200], sweep={"grid": {"p": ["y" * 900, "z"]}})
    with pytest.raises(JobSpecInvalid) as caught:
        expand(parent)
    assert caught.value.fields == ("children[0].command.1",)  # the templated argument grew too long


def test_a_dedicated_sweep_may_use_another_image() -> None:
    assert [c.image for c in expand(spec(array={"size": 2}, image="custom", dedicated=True))] == ["custom"] * 2
