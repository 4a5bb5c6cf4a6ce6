"""The ECS container agent's local endpoints, one path prefix per task: task metadata (v4) and scale-in
protection. Real ECS refuses to stop a protected task on service scale-in; the emulator asks ``protected``.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROTECTION_PATH = "/task-protection/v1/state"


class AgentEndpoint:
    """``http://127.0.0.1:PORT/<task-id>`` is a task's ECS_AGENT_URI and ECS_CONTAINER_METADATA_URI_V4."""

    def __init__(self) -> None:
        self._tasks: dict[str, str] = {}  # task id -> ARN
        self._protected_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, name="ecs-agent", daemon=True)
        self._thread.start()

    def uri(self, task_id: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{task_id}"

    def register(self, task_id: str, task_arn: str) -> None:
        with self._lock:
            self._tasks[task_id] = task_arn

    def protected(self, task_id: str) -> bool:
        with self._lock:
            return self._protected_until.get(task_id, 0.0) > time.time()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _protect(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        enabled = bool(body.get("ProtectionEnabled"))
        minutes = int(body.get("ExpiresInMinutes") or 120)  # ECS's default when enabling without a period
        expires = time.time() + minutes * 60 if enabled else 0.0
        with self._lock:
            self._protected_until[task_id] = expires
        expiration = datetime.fromtimestamp(expires, UTC).isoformat() if enabled else None
        return {
            "protection": {"ProtectionEnabled": enabled, "ExpirationDate": expiration, "TaskArn": self._tasks[task_id]}
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # keep the demo's console clean
                pass

            def _route(self) -> tuple[str | None, str]:
                task_id, _, rest = self.path.lstrip("/").partition("/")
                with agent._lock:
                    known = task_id in agent._tasks
                return (task_id if known else None), "/" + rest

            def _reply(self, status: int, document: dict[str, Any]) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                task_id, path = self._route()
                if task_id is None or path != "/task":
                    self._reply(404, {"error": {"Code": "NotFound", "Message": self.path}})
                    return
                # the task metadata v4 shape: every local task's private address is the loopback
                network = {"NetworkMode": "awsvpc", "IPv4Addresses": ["127.0.0.1"]}
                self._reply(200, {"TaskARN": agent._tasks[task_id], "Containers": [{"Networks": [network]}]})

            def do_PUT(self) -> None:
                task_id, path = self._route()
                if task_id is None or path != PROTECTION_PATH:
                    self._reply(404, {"error": {"Code": "NotFound", "Message": self.path}})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._reply(400, {"error": {"Code": "InvalidParameterException", "Message": "body is not JSON"}})
                    return
                self._reply(200, agent._protect(task_id, body))

        return Handler
