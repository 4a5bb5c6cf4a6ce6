"""ECS task scale-in protection through the container agent endpoint, held while the worker is busy.

``PUT $ECS_AGENT_URI/task-protection/v1/state`` with ``{"ProtectionEnabled": true, "ExpiresInMinutes": N}``
(1..2,880 minutes) protects the task from service scale-in and deployments; ``{"ProtectionEnabled": false}``
releases it. The agent answers ``{"protection": {...}}``, or ``{"failure": {...}}`` / ``{"error": {...}}``.
(Amazon ECS developer guide, "Task scale-in protection endpoint".) Protection expires by itself, so it is
renewed while busy: a worker that dies while protected becomes eligible for scale-in again within N minutes.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger("worker.protection")

PATH = "/task-protection/v1/state"


class ProtectionClient:
    """The agent endpoint; with no ``agent_uri`` (local runs) every call is a logged no-op."""

    def __init__(self, agent_uri: str | None, *, timeout_s: float = 5.0) -> None:
        self.url = agent_uri.rstrip("/") + PATH if agent_uri else None
        self.timeout_s = timeout_s
        self.task_arn: str | None = None
        if self.url is None:
            log.info("ECS_AGENT_URI is not set (not on ECS): scale-in protection is skipped")

    def put(self, enabled: bool, minutes: int) -> bool:
        """Set protection on or off; True when the agent confirmed it. Failures are logged, never raised."""
        if self.url is None:
            return True
        body: dict[str, Any] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = minutes
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), method="PUT", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("task protection %s failed: %s", "on" if enabled else "off", exc)
            return False
        problem = answer.get("failure") or answer.get("error") if isinstance(answer, dict) else "not an object"
        if problem:
            log.warning("task protection %s refused by the ECS agent: %s", "on" if enabled else "off", problem)
            return False
        protection = answer.get("protection") or {}
        self.task_arn = protection.get("TaskArn") or self.task_arn
        log.info("task protection %s (expires %s)", "on" if enabled else "off", protection.get("ExpirationDate"))
        return True


class ProtectionKeeper:
    """Reference-counted protection: on when the first job starts, renewed while busy, off when idle.

    Renewal happens every half protection period on a background thread, so a job longer than the
    protection period stays protected.
    """

    def __init__(self, client: ProtectionClient, *, minutes: int, renew_every_s: float | None = None) -> None:
        self.client = client
        self.minutes = minutes
        self.renew_every_s = renew_every_s if renew_every_s is not None else minutes * 60 / 2
        self.busy = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        with self._lock:
            self.busy += 1
            if self.busy == 1:
                self.client.put(True, self.minutes)
                self._ensure_renewer()

    def release(self) -> None:
        with self._lock:
            self.busy -= 1
            if self.busy == 0:
                self.client.put(False, self.minutes)

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def _ensure_renewer(self) -> None:
        if self._thread is None and self.client.url is not None:
            self._thread = threading.Thread(target=self._renew_loop, name="protection-renewer", daemon=True)
            self._thread.start()

    def _renew_loop(self) -> None:
        while not self._wake.wait(self.renew_every_s) and not self._closed:
            with self._lock:
                if self.busy:
                    self.client.put(True, self.minutes)
