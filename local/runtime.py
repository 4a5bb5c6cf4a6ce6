"""A local Lambda execution environment: ``python -m local.runtime module.function``.

One process per function, like Lambda's: the function's environment variables, its handler imported once
(cold start), then one invocation at a time. Invocations arrive as JSON lines on stdin; each answer is one
JSON line (``{"result": ...}`` or ``{"error": ...}``) on the original stdout. The handler's own output
(Powertools' JSON logs) goes to stderr, which the control plane writes to the function's log file.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from typing import Any


class LocalContext:
    """The LambdaContext fields the handlers and Powertools read."""

    def __init__(self, function_name: str, timeout_s: float, memory_mb: int) -> None:
        region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything the handler prints goes to the log, not into the protocol
    sys.stdout = sys.stderr
    module_name, _, attribute = sys.argv[1].rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", module_name)
    timeout_s = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "30"))
    memory_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"))
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        event = json.loads(line)
        answer: dict[str, Any]
        try:
            answer = {"result": handler(event, LocalContext(function_name, timeout_s, memory_mb))}
        except Exception as error:
            traceback.print_exc()
            answer = {"error": f"{type(error).__name__}: {error}"}
        protocol.write(json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
