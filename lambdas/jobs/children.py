"""The children of an array job or sweep (pure): each a validated JobSpec ``<parent>-<index>``."""

from __future__ import annotations

from collections.abc import Mapping

from jobs.errors import FieldError, JobSpecInvalid
from jobs.jobspec import JobSpec, parse_job_spec
from jobs.sweep import TEMPLATE, Scalar, child_id, env_name, format_value


def size_of(spec: JobSpec) -> int:
    """Children of an array/sweep spec (0 for an ordinary job)."""
    if spec.array is not None:
        return spec.array.size
    return spec.sweep.size if spec.sweep is not None else 0


def expand(spec: JobSpec) -> list[JobSpec]:
    """The children of a parent spec, each validated; JobSpecInvalid names ``children[i].<field>``."""
    if spec.job_id is None:
        raise ValueError("expand needs a spec with a job_id")
    points = spec.sweep.points() if spec.sweep is not None else [{}] * size_of(spec)
    base = spec.model_dump(exclude={"array", "sweep"}, exclude_none=True)
    children: list[JobSpec] = []
    errors: list[FieldError] = []
    for index, point in enumerate(points):
        values = {**point, "index": index}
        document = {
            **base,
            "job_id": child_id(spec.job_id, index),
            "parent_id": spec.job_id,
            "array_index": index,
            "command": [_render(arg, values) for arg in spec.command],
            "environment": {**spec.environment, **{env_name(k): format_value(v) for k, v in point.items()}},
        }
        try:
            children.append(parse_job_spec(document))
        except JobSpecInvalid as exc:
            errors.extend(FieldError(f"children[{index}].{e.field}", e.message) for e in exc.errors)
            if len(errors) >= 10:
                break
    if errors:
        raise JobSpecInvalid(errors)
    return children


def _render(arg: str, values: Mapping[str, Scalar]) -> str:
    return TEMPLATE.sub(lambda m: format_value(values[m.group(1)]) if m.group(1) in values else m.group(0), arg)
