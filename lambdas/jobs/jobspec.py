"""The JobSpec: the JSON document a user puts on a training queue (pydantic v2, unknown fields rejected).

Validation that needs the deployment's settings (which images exist, whether GPUs are on) is optional
(`parse_job_spec(..., deployment=...)`), so the model itself stays usable by the CLI and the worker without any
configuration. Every problem of a document is reported at once, cross-field rules included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from jobs.errors import FieldError, JobSpecInvalid
from jobs.max_wait import MaxWait, max_wait_errors
from jobs.retry_rules import RetryRules
from jobs.sizes import FARGATE_MEMORY, describe_memory_choices
from jobs.sweep import ArraySpec, SweepSpec, array_errors

JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
IMAGE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
TAG_TEXT_PATTERN = re.compile(r"^[\w .:/=+@-]*$")
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$"

RESERVED_ENV_PREFIXES = ("AWS_", "ECS_", "TRAIN_")
RESERVED_TAG_KEYS = frozenset({"job-id", "attempt", "rank"})

MAX_BODY_BYTES = 64 * 1024
MAX_COMMAND_ARGS = 64
MAX_COMMAND_CHARS = 2048
MAX_ENV_VARS = 50
MAX_ENV_CHARS = 4096
"""RunTask allows 8,192 characters of overrides in total (JSON included); command + env stay well below."""
MAX_TAGS = 20
"""ECS allows 50 tags per task; the system adds its own."""
MAX_GPUS = 8
MAX_NODES = 64
"""Hard bound on a gang's ranks; a deployment sets its own, lower maximum (`autoscaler.max_nodes`)."""

_ARRAY_WAIT_FIELDS = (
    "array",
    "sweep",
    "job_id",
    "parent_id",
    "array_index",
    "environment",
    "max_wait",
    "dedicated",
    "spot",
    "image",
    "gpu",
)
"""Fields the array/sweep and max_wait cross-field rules read (jobs.sweep, jobs.waiting)."""

CROSS_FIELD = "cross_field"
"""Kind of the model-level error; parse_job_spec reports these rules per field itself (see _resource_errors)."""


def _custom(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


class JobSpec(BaseModel):
    """One training job. Fields default to sensible values; every bound is named in its error."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, str_strip_whitespace=False)

    job_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)] | None = None
    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    image: Annotated[str, Field(pattern=IMAGE_PATTERN)] = "default"
    command: Annotated[list[Annotated[str, Field(max_length=1024)]], Field(min_length=1)]
    environment: dict[str, str] = Field(default_factory=dict)
    cpu: int = 1024
    memory: int = 2048
    gpu: Annotated[int, Field(ge=0, le=MAX_GPUS)] = 0
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    timeout_seconds: Annotated[int, Field(ge=60, le=14 * 86400)] = 86400
    spot: bool = True
    dedicated: bool = False
    priority: Annotated[int, Field(ge=0, le=9)] = 5
    tags: dict[str, str] = Field(default_factory=dict)
    checkpoint_uri: Annotated[str, Field(pattern=S3_URI_PATTERN, max_length=1024)] | None = None
    nodes: Annotated[int, Field(ge=1, le=MAX_NODES)] = 1
    """Ranks of a distributed job: N tasks started together (see jobs.gang)."""
    array: ArraySpec | None = None
    sweep: SweepSpec | None = None
    """An array job / a sweep: a parent with N children (see jobs.sweep)."""
    parent_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)] | None = None
    array_index: Annotated[int, Field(ge=0, lt=10_000)] | None = None
    """Set by the system on the children of an array job or sweep."""
    retry_rules: RetryRules = Field(default_factory=list)
    """Ordered rules on exit code / stop code / reason: RETRY or EXIT (see jobs.retry_rules)."""
    max_wait: MaxWait | None = None
    """Time from submission to start, then ON_DEMAND fallback or FAIL (see jobs.waiting)."""

    @field_validator("command")
    @classmethod
    def _bounded_command(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_COMMAND_ARGS:
            raise _custom("too_long", f"at most {MAX_COMMAND_ARGS} arguments (got {len(value)})")
        total = sum(len(arg) for arg in value)
        if total > MAX_COMMAND_CHARS:
            raise _custom("too_long", f"at most {MAX_COMMAND_CHARS} characters in total (got {total})")
        if not value[0].strip():
            raise _custom("value_error", "the first argument (the program) must not be blank")
        return value

    @field_validator("environment")
    @classmethod
    def _bounded_environment(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_ENV_VARS:
            raise _custom("too_long", f"at most {MAX_ENV_VARS} variables (got {len(value)})")
        total = sum(len(k) + len(v) for k, v in value.items())
        if total > MAX_ENV_CHARS:
            raise _custom("too_long", f"at most {MAX_ENV_CHARS} characters of names and values in total (got {total})")
        for key in value:
            if not ENV_NAME_PATTERN.match(key):
                raise _custom(
                    "value_error",
                    f"{key!r} is not a valid variable name (letters, digits, '_'; not starting with a digit)",
                )
            if key.upper().startswith(RESERVED_ENV_PREFIXES):
                raise _custom(
                    "value_error",
                    f"{key!r} uses a reserved prefix ({', '.join(RESERVED_ENV_PREFIXES)} are set by the system)",
                )
        return value

    @field_validator("cpu")
    @classmethod
    def _fargate_cpu(cls, value: int) -> int:
        if value not in FARGATE_MEMORY:
            allowed = ", ".join(str(c) for c in FARGATE_MEMORY)
            raise _custom("value_error", f"{value} is not a Fargate cpu size; allowed: {allowed}")
        return value

    @field_validator("tags")
    @classmethod
    def _bounded_tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_TAGS:
            raise _custom("too_long", f"at most {MAX_TAGS} tags (got {len(value)})")
        for key, tag_value in value.items():
            if not 1 <= len(key) <= 128 or not TAG_TEXT_PATTERN.match(key):
                raise _custom(
                    "value_error", f"tag key {key!r} must be 1-128 characters of letters, digits, ' .:/=+-@_'"
                )
            if len(tag_value) > 256 or not TAG_TEXT_PATTERN.match(tag_value):
                raise _custom(
                    "value_error", f"tag {key!r}: value must be at most 256 characters of letters, digits, ' .:/=+-@_'"
                )
            if key.lower().startswith("aws:") or key in RESERVED_TAG_KEYS:
                raise _custom("value_error", f"tag key {key!r} is reserved")
        return value

    @model_validator(mode="after")
    def _resources(self) -> JobSpec:
        errors = _resource_errors(
            self.model_dump(include={"cpu", "memory", "gpu", "dedicated", "nodes"}), invalid=set()
        )
        if errors:
            raise _custom(CROSS_FIELD, "; ".join(str(e) for e in errors))
        return self

    @model_validator(mode="after")
    def _arrays_and_waits(self) -> JobSpec:
        values = {name: getattr(self, name) for name in _ARRAY_WAIT_FIELDS}
        if errors := array_errors(values, invalid=()) + max_wait_errors(values, invalid=()):
            raise _custom(CROSS_FIELD, "; ".join(str(e) for e in errors))
        return self

    # Convenience for adapters and the CLI.

    def to_json(self) -> str:
        """Canonical JSON (defaults omitted where unset), suitable as a queue message body."""
        return self.model_dump_json(exclude_none=True)

    def default_checkpoint_uri(self, bucket: str) -> str:
        return self.checkpoint_uri or f"s3://{bucket}/jobs/{self.job_id}/checkpoints/"


def derive_job_id(message_id: str) -> str:
    """Deterministic job id for a spec without one, from the SQS message id (stable across redeliveries)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", message_id)
    return ("sqs-" + cleaned)[:64]


def _field_name(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _to_field_errors(exc: ValidationError) -> list[FieldError]:
    errors: list[FieldError] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        message = str(err.get("msg", "invalid"))
        if kind == "extra_forbidden":
            errors.append(FieldError(_field_name(loc), f"unknown field {str(loc[-1])!r} is not allowed"))
        elif kind == "json_invalid":
            errors.append(FieldError("body", f"malformed JSON: {message}"))
        elif kind == CROSS_FIELD:
            continue  # parse_job_spec checks the cross-field rules on the raw values, with the other errors
        elif kind == "model_type" and not loc:
            errors.append(FieldError("body", "must be a JSON object"))
        elif kind == "missing":
            errors.append(FieldError(_field_name(loc), "is required"))
        else:
            errors.append(FieldError(_field_name(loc), message))
    return errors


@dataclass(frozen=True)
class Deployment:
    """What a deployment offers: image names with a task definition, GPU task definitions, GPUs on or off."""

    images: Collection[str]
    gpu_images: Collection[str] = ()
    gpu_enabled: bool = False
    max_nodes: int = MAX_NODES


def parse_job_spec(document: str | bytes | Mapping[str, Any], deployment: Deployment | None = None) -> JobSpec:
    """Validate a queue message body (JSON text) or a mapping; raise JobSpecInvalid listing every problem at
    once, each naming its field: field errors, the cross-field rules (cpu/memory pair, GPU needs dedicated) and,
    given a ``deployment``, its rules (known image, GPUs on)."""
    try:
        if isinstance(document, Mapping):
            spec = JobSpec.model_validate(dict(document))
        else:
            size = len(document.encode() if isinstance(document, str) else document)
            if size > MAX_BODY_BYTES:
                raise JobSpecInvalid([FieldError("body", f"too large: {size} bytes (at most {MAX_BODY_BYTES})")])
            spec = JobSpec.model_validate_json(document)
    except ValidationError as exc:
        errors = _to_field_errors(exc)
        values, invalid = _raw_values(document), {e.field for e in errors}
        errors += _resource_errors(values, invalid)
        if deployment is not None:
            errors += _deployment_errors(values, deployment, invalid)
        raise JobSpecInvalid(errors) from None
    if deployment is not None and (errors := _deployment_errors(spec.model_dump(), deployment, invalid=set())):
        raise JobSpecInvalid(errors)
    return spec


def _raw_values(document: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(document, Mapping):
        return document
    try:
        values = json.loads(document)
    except ValueError:
        return {}
    return values if isinstance(values, dict) else {}


def _valid(values: Mapping[str, Any], name: str, default: Any, invalid: Collection[str]) -> Any:
    """The raw value of a field that passed its own validation (None when it did not)."""
    if name in invalid:
        return None
    value = values.get(name, default)
    return value if type(value) is type(default) else None


def _resource_errors(values: Mapping[str, Any], invalid: Collection[str]) -> list[FieldError]:
    """Cross-field rules, checked only between fields that are valid on their own."""
    errors: list[FieldError] = []
    cpu, memory = _valid(values, "cpu", 1024, invalid), _valid(values, "memory", 2048, invalid)
    if cpu in FARGATE_MEMORY and memory is not None and memory not in FARGATE_MEMORY[cpu]:
        errors.append(
            FieldError(
                "memory",
                f"{memory} MiB is not valid with cpu {cpu}; allowed for cpu {cpu}: {describe_memory_choices(cpu)}",
            )
        )
    if _valid(values, "gpu", 0, invalid) and _valid(values, "dedicated", False, invalid) is False:
        errors.append(
            FieldError("gpu", "GPU jobs must set dedicated=true (queue workers run on Fargate, which has no GPUs)")
        )
    if (_valid(values, "nodes", 1, invalid) or 1) > 1 and _valid(values, "dedicated", False, invalid) is False:
        errors.append(FieldError("nodes", "distributed jobs (nodes > 1) must set dedicated=true (one task per rank)"))
    return errors + array_errors(values, invalid) + max_wait_errors(values, invalid)


def _deployment_errors(values: Mapping[str, Any], deployment: Deployment, invalid: Collection[str]) -> list[FieldError]:
    nodes = _valid(values, "nodes", 1, invalid)
    errors = []
    if nodes is not None and nodes > deployment.max_nodes:
        errors.append(
            FieldError("nodes", f"{nodes} ranks requested; this deployment allows at most {deployment.max_nodes}")
        )
    return errors + _image_errors(values, deployment, invalid)


def _image_errors(values: Mapping[str, Any], deployment: Deployment, invalid: Collection[str]) -> list[FieldError]:
    gpu, image = _valid(values, "gpu", 0, invalid), _valid(values, "image", "default", invalid)
    if gpu and not deployment.gpu_enabled:
        return [
            FieldError("gpu", f"{gpu} GPU(s) requested but GPUs are off in this deployment (no GPU capacity provider)")
        ]
    if gpu and image is not None and image not in deployment.gpu_images:
        allowed = ", ".join(sorted(deployment.gpu_images)) or "none"
        return [FieldError("image", f"no GPU task definition for image {image!r}; allowed: {allowed}")]
    if not gpu and image is not None and image not in deployment.images:
        allowed = ", ".join(sorted(deployment.images)) or "none"
        return [FieldError("image", f"unknown image {image!r}; allowed: {allowed}")]
    return []


def guess_job_id(body: str) -> str | None:
    """The job_id of a body that failed validation, when it has a valid one (to record the rejection)."""
    try:
        document = json.loads(body)
    except (ValueError, TypeError):
        return None
    if isinstance(document, dict):
        job_id = document.get("job_id")
        if isinstance(job_id, str) and re.match(JOB_ID_PATTERN, job_id):
            return job_id
    return None
