"""The stack's Lambda functions, each running as a local execution environment (``local.runtime``)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent


class InvocationError(RuntimeError):
    """The handler raised (Lambda's "function error"); the event source decides what happens next."""


@dataclass(frozen=True)
class FunctionSpec:
    """What the template says about one function (its environment already resolved)."""

    logical_id: str
    handler: str
    environment: Mapping[str, str]
    timeout_s: float
    memory_mb: int


class LocalFunction:
    """One warm execution environment; invocations are serialized (reserved concurrency 1)."""

    def __init__(self, spec: FunctionSpec, aws_env: Mapping[str, str], log: IO[str]) -> None:
        self.spec = spec
        self.invocations = 0
        self.errors = 0
        self._lock = threading.Lock()
        env = {
            **aws_env,
            **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_s),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            # the function's asset holds lambdas/ at its root; the repository root adds local.runtime
            "PYTHONPATH": f"{REPO / 'lambdas'}:{REPO}",
        }
        self._process = subprocess.Popen(
            [sys.executable, "-m", "local.runtime", spec.handler],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self._expect_ready()

    def _expect_ready(self) -> None:
        line = self._read()
        if not json.loads(line).get("ready"):
            raise RuntimeError(f"{self.spec.logical_id}: unexpected start-up answer {line!r}")

    def _read(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(
                f"{self.spec.logical_id} ({self.spec.handler}) exited with code {self._process.wait()}; see its log"
            )
        return line

    def invoke(self, event: Mapping[str, Any]) -> Any:
        with self._lock:
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(event, default=str) + "\n")
            self._process.stdin.flush()
            answer = json.loads(self._read())
            self.invocations += 1
        if "error" in answer:
            self.errors += 1
            raise InvocationError(f"{self.spec.logical_id}: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        if self._process.poll() is None:
            if self._process.stdin:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
