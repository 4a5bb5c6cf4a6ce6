"""Retry rules (pure), in the spirit of AWS Batch's ``evaluateOnExit``: what a failed attempt leads to.

A job may list up to 10 rules under ``retry_rules``; each matches on ``exit_code``, ``stop_code`` and
``reason`` (globs, every given one must match) and says RETRY or EXIT. The first match wins; then the built-in
defaults apply; then RETRY. RETRY still uses one of ``max_attempts``. Interruptions (Spot, no capacity, a
stopped worker) never reach these rules: they retry without using an attempt (``jobs.retries``).

Built-in defaults, which users need not write:

- out of memory (exit 137, or an OutOfMemoryError reason) -> EXIT, naming the ``memory`` setting to raise;
- an image that cannot be pulled (CannotPullContainerError) -> EXIT at once: retrying cannot help.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

MAX_RULES = 10
GLOB = r"^[\x20-\x7e]{1,512}$"
EXIT_CODE_GLOB = r"^-?[0-9*?\[\]!-]{1,64}$"
OOM_EXIT_CODE = 137
"""128 + SIGKILL: how the kernel's out-of-memory killer ends a container."""


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


UpperCase = BeforeValidator(_upper)
"""Actions are case-insensitive in job files (``action: retry``)."""

Action = Annotated[Literal["RETRY", "EXIT"], UpperCase]
RETRY: Action = "RETRY"
EXIT: Action = "EXIT"


class RetryRule(BaseModel):
    """One rule: e.g. ``{exit_code: "3", action: EXIT}`` or ``{reason: "*NCCL*", action: RETRY}``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    action: Action
    exit_code: Annotated[str, Field(pattern=EXIT_CODE_GLOB)] | int | None = None
    stop_code: Annotated[str, Field(pattern=GLOB)] | None = None
    reason: Annotated[str, Field(pattern=GLOB)] | None = None

    @model_validator(mode="after")
    def _has_condition(self) -> RetryRule:
        if self.exit_code is None and self.stop_code is None and self.reason is None:
            raise PydanticCustomError("value_error", "give at least one of exit_code, stop_code, reason")
        return self

    def matches(self, stop: Stop) -> bool:
        return (
            _glob(None if stop.exit_code is None else str(stop.exit_code), self.exit_code)
            and _glob(stop.stop_code, self.stop_code)
            and _glob(stop.reason, self.reason)
        )


RetryRules = Annotated[list[RetryRule], Field(max_length=MAX_RULES)]


def _glob(value: str | None, pattern: str | int | None) -> bool:
    if pattern is None:
        return True
    return value is not None and fnmatchcase(value, str(pattern))


@dataclass(frozen=True)
class Stop:
    """How an attempt ended: the trainer's exit code, ECS's stop code, the reasons joined (stopped/container)."""

    exit_code: int | None
    stop_code: str | None
    reason: str | None


@dataclass(frozen=True)
class Verdict:
    action: Action
    why: str
    """Which rule decided, for the job's reason."""


def is_out_of_memory(stop: Stop) -> bool:
    """Exit 137 (-9 when a parent process saw the SIGKILL, as in the worker) or ECS's OutOfMemoryError."""
    return stop.exit_code in (OOM_EXIT_CODE, -9) or "OutOfMemoryError" in (stop.reason or "")


def evaluate(rules: list[RetryRule], stop: Stop, *, oom_advice: str) -> Verdict:
    """The first matching user rule, else the built-in defaults, else RETRY. `oom_advice` says which memory
    setting to raise (a dedicated job's `memory`, or the worker's size for a worker-queue job)."""
    for number, rule in enumerate(rules, start=1):
        if rule.matches(stop):
            return Verdict(rule.action, f"retry_rules[{number - 1}] matched: {rule.action}")
    if is_out_of_memory(stop):
        return Verdict(EXIT, f"out of memory: {oom_advice} (not retried)")
    if "CannotPullContainerError" in (stop.reason or ""):
        return Verdict(EXIT, "the image could not be pulled; fix the image (not retried)")
    return Verdict(RETRY, "")
