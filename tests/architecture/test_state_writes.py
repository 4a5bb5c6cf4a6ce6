"""Job states are written by the lifecycle alone: every call of a JobStore write method, and every raw DynamoDB
write, outside `lambdas/lifecycle/` (and the store adapter and its in-memory fake) fails this test."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.architecture.test_imports import REPO

RUNTIME_DIRS = ("lambdas", "worker", "trainctl", "local", "bench", "serving", "cdk_app")
STORE_WRITES = frozenset(
    {"create_if_absent", "transition", "annotate", "claim_launch", "release_claim", "request_cancel", "add_to"}
)
"""The JobStore port's write methods (lifecycle/ports.py)."""
RAW_WRITES = frozenset({"put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items"})
ALLOWED = ("lambdas/lifecycle/", "lambdas/aws/job_store.py", "lambdas/aws/dynamo_update.py", "lambdas/fakes/")
RENDEZVOUS_WRITER = "worker/rendezvous.py"
"""Rank 0 publishes its address: a raw update of the `rendezvous` attribute only (the IAM condition allows no
other attribute), never the job's state."""


def calls(path: Path) -> Iterator[tuple[int, str, ast.Call]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            yield node.lineno, node.func.attr, node


def writes_outside_the_lifecycle(root: Path) -> list[str]:
    found = []
    for folder in RUNTIME_DIRS:
        for path in sorted((root / folder).rglob("*.py")):
            where = path.relative_to(root).as_posix()
            if where.startswith(ALLOWED):
                continue
            for line, method, node in calls(path):
                if method in STORE_WRITES or (method in RAW_WRITES and where != RENDEZVOUS_WRITER):
                    found.append(f"{where}:{line} {method}")
                elif method in RAW_WRITES and "state" in ast.unparse(node):
                    found.append(f"{where}:{line} {method} names the state")
    return found


def test_only_the_lifecycle_writes_job_states() -> None:
    assert writes_outside_the_lifecycle(REPO) == []


def test_the_check_finds_a_write_outside_the_lifecycle(tmp_path: Path) -> None:
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "x.py").write_text("def f(store):\n    store.transition('j', 'RUNNING')\n")
    (tmp_path / "trainctl").mkdir()
    (tmp_path / "trainctl" / "y.py").write_text("def g(ddb):\n    ddb.update_item(TableName='t')\n")
    (tmp_path / "lambdas" / "lifecycle").mkdir(parents=True)
    (tmp_path / "lambdas" / "lifecycle" / "z.py").write_text("def h(store):\n    store.transition('j', 'RUNNING')\n")
    assert writes_outside_the_lifecycle(tmp_path) == ["worker/x.py:2 transition", "trainctl/y.py:2 update_item"]
