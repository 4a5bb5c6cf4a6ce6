"""Array jobs and sweeps (pure): the JobSpec blocks `array` / `sweep` and their expansion into child jobs.

A parent JobSpec with `array: {size: N}` or a `sweep:` block becomes N children ``<parent>-<index>`` (index
0..N-1). Each child is the parent's spec without the block, with ``parent_id`` / ``array_index`` set; a sweep
child also gets each parameter as an environment variable (its name upper-cased) and ``{{name}}`` replaced in
its command (``{{index}}`` works for both kinds). Expansion: jobs.children; TRAIN_ARRAY_INDEX and
TRAIN_PARENT_ID: jobs.environment.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from jobs.errors import FieldError

MIN_CHILDREN = 2
MAX_CHILDREN = 10_000
MAX_PARENT_ID_CHARS = 58
"""A child id is ``<parent>-<index>``: 58 + 1 + 4 digits (index <= 9999) fits the 64-character job id."""
PARAM_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"
MAX_GRID_VALUES = 1000
TEMPLATE = re.compile(r"\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}")

Scalar = str | int | float | bool


class ArraySpec(BaseModel):
    """`array: {size: N}`: N identical children, told apart by their index."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    size: Annotated[int, Field(ge=MIN_CHILDREN, le=MAX_CHILDREN)]


class Distribution(BaseModel):
    """One randomly sampled parameter: exactly one of uniform [low, high], log_uniform [low, high], choice."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    uniform: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    log_uniform: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    choice: Annotated[list[Scalar], Field(min_length=1, max_length=MAX_GRID_VALUES)] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Distribution:
        kinds = [k for k in ("uniform", "log_uniform", "choice") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise PydanticCustomError(
                "value_error", f"give exactly one of uniform, log_uniform, choice (got {', '.join(kinds) or 'none'})"
            )
        for kind in ("uniform", "log_uniform"):
            bounds = getattr(self, kind)
            if bounds is not None and not bounds[0] < bounds[1]:
                raise PydanticCustomError("value_error", f"{kind}: low must be below high (got {bounds})")
        if self.log_uniform is not None and self.log_uniform[0] <= 0:
            raise PydanticCustomError("value_error", "log_uniform: bounds must be > 0")
        return self

    def draw(self, rng: random.Random) -> Scalar:
        if self.uniform is not None:
            return rng.uniform(*self.uniform)
        if self.log_uniform is not None:
            low, high = self.log_uniform
            return math.exp(rng.uniform(math.log(low), math.log(high)))
        assert self.choice is not None
        return rng.choice(self.choice)


class RandomSearch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    samples: Annotated[int, Field(ge=1, le=MAX_CHILDREN)]
    params: Annotated[dict[str, Distribution], Field(min_length=1)]


class SweepSpec(BaseModel):
    """`sweep:` a grid (every combination) and/or random samples (per grid point), reproducible by `seed`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    grid: dict[str, Annotated[list[Scalar], Field(min_length=1, max_length=MAX_GRID_VALUES)]] = Field(
        default_factory=dict
    )
    random: RandomSearch | None = None
    seed: int = 0

    @field_validator("grid")
    @classmethod
    def _grid_names(cls, value: dict[str, list[Scalar]]) -> dict[str, list[Scalar]]:
        _check_names(value)
        return value

    @model_validator(mode="after")
    def _shape(self) -> SweepSpec:
        if not self.grid and self.random is None:
            raise PydanticCustomError("value_error", "give a grid, random samples, or both")
        if self.random is not None:
            _check_names(self.random.params)
            both = sorted(set(self.grid) & set(self.random.params))
            if both:
                raise PydanticCustomError(
                    "value_error", f"parameter(s) {', '.join(both)} are both in the grid and random"
                )
        if not MIN_CHILDREN <= self.size <= MAX_CHILDREN:
            raise PydanticCustomError(
                "value_error", f"makes {self.size} children; a sweep makes {MIN_CHILDREN}..{MAX_CHILDREN}"
            )
        return self

    @property
    def size(self) -> int:
        grid = math.prod(len(values) for values in self.grid.values())
        return grid * (self.random.samples if self.random else 1)

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.grid, *(self.random.params if self.random else ()))

    def points(self) -> list[dict[str, Scalar]]:
        """Every child's parameters, in index order (grid order first, then samples; same seed, same list)."""
        grid = [dict(zip(self.grid, combo, strict=True)) for combo in itertools.product(*self.grid.values())]
        if self.random is None:
            return grid
        points: list[dict[str, Scalar]] = []
        for point in grid or [{}]:
            for _ in range(self.random.samples):
                rng = random.Random(f"{self.seed}/{len(points)}")
                points.append({**point, **{name: d.draw(rng) for name, d in self.random.params.items()}})
        return points


def _check_names(params: Mapping[str, Any]) -> None:
    for name in params:
        if not re.match(PARAM_NAME, name) or name.lower() == "index":
            raise PydanticCustomError(
                "value_error", f"parameter name {name!r} must be a letter then letters, digits, '_' (not 'index')"
            )


def format_value(value: Scalar) -> str:
    """A parameter as text: booleans lower-case, floats with their shortest exact repr."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(round(value, 12))
    return str(value)


def env_name(param: str) -> str:
    return param.upper()


def child_id(parent_id: str, index: int) -> str:
    return f"{parent_id}-{index}"


def array_errors(values: Mapping[str, Any], invalid: Collection[str]) -> list[FieldError]:
    """Cross-field rules of array/sweep/child fields, on raw values (fields valid on their own only)."""
    errors: list[FieldError] = []
    array, sweep = values.get("array"), values.get("sweep")
    is_parent = array is not None or sweep is not None
    if array is not None and sweep is not None:
        errors.append(FieldError("sweep", "give either array or sweep, not both"))
    job_id = values.get("job_id")
    if is_parent and isinstance(job_id, str) and "job_id" not in invalid and len(job_id) > MAX_PARENT_ID_CHARS:
        errors.append(
            FieldError(
                "job_id",
                f"at most {MAX_PARENT_ID_CHARS} characters for an array or sweep job (children are "
                f"<job_id>-<index>); got {len(job_id)}",
            )
        )
    image = values.get("image", "default")
    if is_parent and "image" not in invalid and image != "default" and values.get("dedicated") is not True:
        errors.append(
            FieldError(
                "image",
                f"the children of a non-dedicated array or sweep run on the worker queue, which runs the worker "
                f"image only; set dedicated: true for {image!r}",
            )
        )
    if is_parent and (values.get("parent_id") is not None or values.get("array_index") is not None):
        errors.append(FieldError("parent_id", "parent_id / array_index are set by the system on children only"))
    if (values.get("parent_id") is None) != (values.get("array_index") is None):
        errors.append(FieldError("array_index", "parent_id and array_index go together"))
    names = [] if any(f.startswith("sweep") for f in invalid) else _sweep_names(sweep)
    environment = values.get("environment")
    if names and isinstance(environment, Mapping) and "environment" not in invalid:
        clash = sorted(env_name(n) for n in names if env_name(n) in environment)
        if clash:
            errors.append(FieldError("environment", f"{', '.join(clash)} also set by the sweep's parameters"))
    return errors


def _sweep_names(sweep: Any) -> list[str]:
    if isinstance(sweep, SweepSpec):
        return list(sweep.names)
    if not isinstance(sweep, Mapping):
        return []
    params = (sweep.get("random") or {}).get("params") if isinstance(sweep.get("random"), Mapping) else {}
    return [*(sweep.get("grid") or {}), *(params or {})]
