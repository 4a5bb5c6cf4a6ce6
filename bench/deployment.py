"""The modelled deployment's settings, read from this repository's stack rather than copied.

* ``STACK``: ``cdk_app.config.AppConfig()``, the stack's defaults (plain Python, no CDK import).
* ``SUBMITTER_EVENT_SOURCE``: the keyword arguments of the submitter's ``SqsEventSource(...)`` in
  ``cdk_app/submitter_function.py``, read from its source text (importing the construct would start
  the CDK's jsii runtime). A change there (batch size, window, ``max_concurrency``) moves the
  benchmark's defaults with it; a form this reader does not understand fails loudly, naming the file.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from pathlib import Path

import cdk_app
from cdk_app.config import AppConfig

SUBMITTER_SOURCE = Path(cdk_app.__file__).with_name("submitter_function.py")
_DURATION_UNITS = {"millis": 0.001, "seconds": 1.0, "minutes": 60.0}


class DeploymentError(ValueError):
    """The stack's source has a form the benchmark cannot read; the message names the file."""


@dataclass(frozen=True)
class EventSource:
    """A Lambda SQS event source's settings (CDK defaults where a keyword is absent)."""

    batch_size: int = 10  # CDK SqsEventSource default
    max_batching_window_s: float = 0.0  # CDK default: no batching window
    max_concurrency: int = 0  # 0: not set (MaximumConcurrency absent: up to 1,000 batches)


def read_event_source(source: str, where: str = "<source>") -> EventSource:
    """The literal keyword arguments of the one ``SqsEventSource(...)`` call in ``source``."""
    calls = [
        node
        for node in ast.walk(ast.parse(source, where))
        if isinstance(node, ast.Call) and _name(node.func) == "SqsEventSource"
    ]
    if len(calls) != 1:
        raise DeploymentError(f"{where}: expected one SqsEventSource(...) call, found {len(calls)}")
    found = EventSource()
    for keyword in calls[0].keywords:
        if keyword.arg == "batch_size":
            found = replace(found, batch_size=_int(keyword.value, keyword.arg, where))
        elif keyword.arg == "max_concurrency":
            found = replace(found, max_concurrency=_int(keyword.value, keyword.arg, where))
        elif keyword.arg == "max_batching_window":
            found = replace(found, max_batching_window_s=_duration(keyword.value, where))
    return found


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else None


def _int(node: ast.expr, arg: str, where: str) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    raise DeploymentError(f"{where} line {node.lineno}: {arg} must be an integer literal for the benchmark")


def _duration(node: ast.expr, where: str) -> float:
    """``Duration.seconds(1)`` (or millis/minutes) with a literal number."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and _name(node.func.value) == "Duration"
        and node.func.attr in _DURATION_UNITS
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Constant)
    ):
        value = node.args[0].value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) * _DURATION_UNITS[node.func.attr]
    raise DeploymentError(
        f"{where} line {node.lineno}: max_batching_window must be Duration.seconds/millis/minutes(<number>)"
    )


STACK = AppConfig()
SUBMITTER_EVENT_SOURCE = read_event_source(SUBMITTER_SOURCE.read_text(encoding="utf-8"), str(SUBMITTER_SOURCE))
