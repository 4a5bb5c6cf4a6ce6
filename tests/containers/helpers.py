"""Shared constants and helpers for the container tests."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUCKET = "artifacts-test"
PYTHON = sys.executable


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for child Python processes (the installed project imports): never a real AWS endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRAIN_", "ECS_", "TRAINCTL_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL="http://127.0.0.1:9",  # discard port: a stray AWS call fails fast and locally
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def wait_until(condition: Callable[[], object], *, what: str, limit_s: float = 60.0) -> None:
    """Poll ``condition`` until true; the limit only bounds a broken run, tests never assert on time."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def create_jobs_table(ddb: Any, name: str = "jobs") -> str:
    """The jobs table as the contract describes it: pk (S), GSI by-state (state S, updated_at S)."""
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "state", "AttributeType": "S"},
            {"AttributeName": "updated_at", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-state",
                "KeySchema": [
                    {"AttributeName": "state", "KeyType": "HASH"},
                    {"AttributeName": "updated_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return name


class AgentStandIn:
    """A local stand-in for the ECS agent's task-protection endpoint (and task metadata) on 127.0.0.1.

    ``events`` records ("PUT", body) and ("GET", protected-at-that-moment) in order.
    """

    TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/cluster/0123456789abcdef"

    def __init__(self, *, answer: dict[str, Any] | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.protected = False
        self.answer = answer
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _reply(self, document: dict[str, Any]) -> None:
                data = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _state(self) -> dict[str, Any]:
                return {
                    "protection": {
                        "ProtectionEnabled": stand_in.protected,
                        "TaskArn": stand_in.TASK_ARN,
                        "ExpirationDate": "2030-01-01T00:00:00Z" if stand_in.protected else None,
                    }
                }

            def do_PUT(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.events.append(("PUT", body))
                if stand_in.answer is not None:
                    self._reply(stand_in.answer)
                    return
                stand_in.protected = bool(body["ProtectionEnabled"])
                self._reply(self._state())

            def do_GET(self) -> None:
                if self.path.endswith("/task"):
                    self._reply({"TaskARN": stand_in.TASK_ARN, "Cluster": "cluster"})
                    return
                stand_in.events.append(("GET", stand_in.protected))
                self._reply(self._state())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def uri(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def puts(self) -> list[dict[str, Any]]:
        return [body for kind, body in self.events if kind == "PUT"]

    def __enter__(self) -> AgentStandIn:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
