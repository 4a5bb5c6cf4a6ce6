"""What ECS does that moto does not: task lifecycles, service scheduling, Spot interruptions.

moto records tasks (RunTask, StopTask, ListTasks, DescribeTasks all work over HTTP); this emulator moves
them through PROVISIONING -> PENDING -> RUNNING -> STOPPED, starts each task's container as a real local
process, keeps the worker service at its desired count (stopping unprotected tasks first on scale-in,
like ECS), and emits an "ECS Task State Change" event on every change, as ECS does through EventBridge.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.agent import AgentEndpoint
from local.functions import REPO

SPOT_REASON = "Your Spot Task was interrupted."
SCALE_IN_REASON = "Scaling activity initiated by (deployment {deployment})"
EXIT_REASON = "Essential container in task exited"


@dataclass(frozen=True)
class Timing:
    """Scaled-down durations (real Fargate: tens of seconds to start; docs/aws-facts.md §1)."""

    provisioning_s: float = 1.0
    pending_s: float = 1.0
    stop_timeout_s: float = 20.0
    """Cap on a container's stopTimeout (120 s in the template) before SIGKILL."""


@dataclass
class LocalTask:
    arn: str
    task_id: str
    service: str | None
    process: subprocess.Popen[bytes] | None = None
    phase_since: float = field(default_factory=time.monotonic)
    stop_code: str | None = None
    stop_requested_at: float | None = None
    log_path: Path | None = None
    log_stream: tuple[str, str] | None = None  # (group, stream) of the awslogs driver
    log_offset: int = 0


class EcsEmulator:
    """Call ``tick()`` often (every ~0.2 s); ``emit`` receives each task state change event's detail."""

    def __init__(
        self,
        *,
        ecs: Any,
        logs: Any,
        backend: Any,
        cluster: str,
        service_strategies: Mapping[str, list[dict[str, Any]]],
        image_commands: Mapping[str, list[str]],
        agent: AgentEndpoint,
        task_env: Mapping[str, str],
        emit: Callable[[dict[str, Any]], None],
        logs_dir: Path,
        timing: Timing = Timing(),
    ) -> None:
        self.ecs = ecs
        self.logs = logs
        self.backend = backend
        self.cluster = cluster
        self.service_strategies = service_strategies
        self.image_commands = image_commands
        self.agent = agent
        self.task_env = task_env
        self.emit = emit
        self.logs_dir = logs_dir
        self.timing = timing
        self.tasks: dict[str, LocalTask] = {}
        self.launches: dict[str, int] = {}  # capacity provider -> tasks started
        self._definitions: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()

    # --- moto's records ------------------------------------------------------------------------

    def _moto_tasks(self) -> dict[str, Any]:
        return dict(self.backend.tasks.get(self.cluster, {}))

    def _moto_services(self) -> list[Any]:
        return [s for s in self.backend.services.values() if s.cluster_name == self.cluster and s.status == "ACTIVE"]

    def _definition(self, arn: str) -> dict[str, Any]:
        if arn not in self._definitions:
            self._definitions[arn] = self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        return self._definitions[arn]

    # --- the loop --------------------------------------------------------------------------------

    def tick(self) -> None:
        with self._lock:
            for arn, task in self._moto_tasks().items():
                if arn not in self.tasks:
                    self._adopt(arn, task)
            for service in self._moto_services():
                self._schedule(service)
            for arn, local in list(self.tasks.items()):
                self._advance(local, self.backend.tasks[self.cluster][arn])
            for service in self._moto_services():
                self._count(service)

    def ship_logs(self) -> None:
        """The awslogs driver: each task's new output lines to its CloudWatch Logs stream."""
        with self._lock:
            tasks = [t for t in self.tasks.values() if t.log_path and t.log_stream]
        for local in tasks:
            assert local.log_path is not None and local.log_stream is not None
            with local.log_path.open("rb") as log:
                log.seek(local.log_offset)
                data = log.read()
            end = data.rfind(b"\n") + 1  # whole lines only
            if not end:
                continue
            now = int(time.time() * 1000)
            lines = [line for line in data[:end].decode(errors="replace").splitlines() if line]
            group, stream = local.log_stream
            for first in range(0, len(lines), 1000):
                batch = [{"timestamp": now, "message": line} for line in lines[first : first + 1000]]
                self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
            local.log_offset += end

    def _adopt(self, arn: str, task: Any) -> None:
        """A task moto just recorded (RunTask, or the scheduler below): it starts PROVISIONING."""
        service = task.group.split(":", 1)[1] if task.group.startswith("service:") else None
        local = LocalTask(arn=arn, task_id=arn.rsplit("/", 1)[-1], service=service)
        self.tasks[arn] = local
        self.agent.register(local.task_id, arn)
        task.created_at = datetime.now(UTC)
        self._set(task, local, "PROVISIONING")

    def _schedule(self, service: Any) -> None:
        """The service scheduler: start tasks up to the desired count; on scale-in stop unprotected ones."""
        live = [
            (arn, local)
            for arn, local in self.tasks.items()
            if local.service == service.name
            and local.stop_requested_at is None
            and self.backend.tasks[self.cluster][arn].last_status != "STOPPED"
        ]
        missing = service.desired_count - len(live)
        for _ in range(max(0, missing)):
            provider = self._next_provider(service.name, [arn for arn, _ in live])
            (task,) = self.backend.run_task(
                self.cluster,
                service.task_definition,
                count=1,
                overrides=None,
                started_by=f"ecs-svc/{uuid.uuid4().int % 10**16:016d}",
                tags=None,
                launch_type=None,
                networking_configuration=service.network_configuration,
                group=f"service:{service.name}",
                capacity_provider_strategy=[{"capacityProvider": provider, "weight": 1}],
            )
            self._adopt(task.task_arn, task)
            live.append((task.task_arn, self.tasks[task.task_arn]))
        if missing < 0:
            idle = [arn for arn, local in live if not self.agent.protected(local.task_id)]
            for arn in idle[missing:]:  # the newest idle tasks; protected (busy) ones are never stopped
                deployment = self.backend.tasks[self.cluster][arn].started_by
                self.stop(arn, "ServiceSchedulerInitiated", SCALE_IN_REASON.format(deployment=deployment))

    def _next_provider(self, service: str, live_arns: list[str]) -> str:
        """ECS's strategy: fill each provider's base, then spread by weight."""
        strategy = self.service_strategies.get(service) or [{"CapacityProvider": "FARGATE", "Weight": 1}]
        counts = {s["CapacityProvider"]: 0 for s in strategy}
        for arn in live_arns:
            name = self.backend.tasks[self.cluster][arn].capacity_provider_name
            counts[name] = counts.get(name, 0) + 1
        for s in strategy:
            if counts[s["CapacityProvider"]] < s.get("Base", 0):
                return str(s["CapacityProvider"])
        weighted = [s for s in strategy if s.get("Weight", 0) > 0] or strategy
        best = min(
            weighted,
            # tasks beyond each provider's base, in proportion to the weights
            key=lambda s: (
                (counts[s["CapacityProvider"]] - s.get("Base", 0) + 1) / max(s.get("Weight", 1), 1),
                -s.get("Weight", 0),
            ),
        )
        return str(best["CapacityProvider"])

    def _advance(self, local: LocalTask, task: Any) -> None:
        now = time.monotonic()
        status = task.last_status
        if status == "STOPPED" and local.process is not None and local.stop_requested_at is None:
            # StopTask (trainctl cancel, a job timeout): moto marked it STOPPED at once; ECS stops it gracefully
            self.stop(local.arn, "UserInitiated", task.stopped_reason or "Task stopped by user")
            return
        if status == "PROVISIONING" and now - local.phase_since >= self.timing.provisioning_s:
            self._set(task, local, "PENDING")
        elif status == "PENDING" and now - local.phase_since >= self.timing.pending_s:
            if local.stop_requested_at is not None:
                self._stopped(task, local, exit_code=None)
                return
            self._start(task, local)
            task.started_at = datetime.now(UTC)
            self._set(task, local, "RUNNING")
        elif status in ("RUNNING", "DEACTIVATING") and local.process is not None:
            code = local.process.poll()
            if code is not None:
                self._stopped(task, local, exit_code=code)
            elif local.stop_requested_at is not None and now - local.stop_requested_at > self.timing.stop_timeout_s:
                os.killpg(local.process.pid, signal.SIGKILL)  # stopTimeout elapsed: the whole container goes
        elif status in ("PROVISIONING",) and local.stop_requested_at is not None:
            self._stopped(task, local, exit_code=None)

    def _set(self, task: Any, local: LocalTask, status: str) -> None:
        task.last_status = status
        for container in task.containers:
            container.last_status = status
        local.phase_since = time.monotonic()
        self.emit(self.describe(task))

    def _stopped(self, task: Any, local: LocalTask, *, exit_code: int | None) -> None:
        task.desired_status = "STOPPED"
        task.stopped_at = datetime.now(UTC)
        task.stop_code = local.stop_code or "EssentialContainerExited"
        if local.stop_code is None:
            task.stopped_reason = EXIT_REASON
        for container in task.containers:
            if exit_code is not None:
                container.exitCode = 137 if exit_code < 0 else exit_code  # killed by a signal: 128 + 9
            else:
                container.exitCode = None
        self._set(task, local, "STOPPED")
        local.process = None

    # --- processes -------------------------------------------------------------------------------

    def _start(self, task: Any, local: LocalTask) -> None:
        definition = self._definition(task.task_definition_arn)
        container = definition["containerDefinitions"][0]
        override: dict[str, Any] = next(
            (o for o in (task.overrides or {}).get("containerOverrides", []) if o.get("name") == container["name"]), {}
        )
        command = (
            override.get("command")
            or container.get("command")
            or self.image_commands[container["image"].rsplit(":", 1)[-1]]
        )
        if command[0] in ("python", "python3"):
            command = [sys.executable, *command[1:]]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONPATH": f"{REPO / 'lambdas'}:{REPO}",  # the image's /app: lambdas/ runtime packages, worker/
            "PYTHONUNBUFFERED": "1",
            **self.task_env,
            **{e["name"]: e["value"] for e in container.get("environment", [])},
            **{e["name"]: e["value"] for e in override.get("environment", [])},
            "ECS_AGENT_URI": self.agent.uri(local.task_id),
            "ECS_CONTAINER_METADATA_URI_V4": self.agent.uri(local.task_id),
        }
        options = (container.get("logConfiguration") or {}).get("options", {})
        if "awslogs-group" in options:
            stream = f"{options.get('awslogs-stream-prefix', 'ecs')}/{container['name']}/{local.task_id}"
            self.logs.create_log_stream(logGroupName=options["awslogs-group"], logStreamName=stream)
            local.log_stream = (options["awslogs-group"], stream)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        local.log_path = self.logs_dir / f"{'worker' if local.service else 'job'}-{local.task_id[:8]}.log"
        with local.log_path.open("ab") as log:
            local.process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        provider = task.capacity_provider_name or "FARGATE"
        self.launches[provider] = self.launches.get(provider, 0) + 1

    def stop(self, arn: str, stop_code: str, reason: str) -> None:
        """Stop a task as ECS does: SIGTERM now, SIGKILL after the stop timeout."""
        with self._lock:
            local = self.tasks[arn]
            task = self.backend.tasks[self.cluster][arn]
            if local.stop_requested_at is not None:
                return
            local.stop_requested_at = time.monotonic()
            local.stop_code = stop_code
            task.desired_status = "STOPPED"
            task.stopped_reason = reason
            task.stop_code = stop_code
            if local.process is not None:
                task.last_status = "RUNNING"  # undo moto's immediate STOPPED: the container still runs
                local.process.send_signal(signal.SIGTERM)
                self.emit(self.describe(task))

    def interrupt(self, arn: str) -> None:
        """A Fargate Spot interruption: the task state change event and SIGTERM, 2 minutes before the stop."""
        self.stop(arn, "SpotInterruption", SPOT_REASON)

    def _count(self, service: Any) -> None:
        """moto sets runningCount = desiredCount on UpdateService; put back what is really running."""
        service.running_count, service.pending_count = self.service_counts(service.name)

    def service_counts(self, service: str) -> tuple[int, int]:
        """(running, pending) tasks of a service, as ECS counts them."""
        with self._lock:
            statuses = [
                self.backend.tasks[self.cluster][local.arn].last_status
                for local in self.tasks.values()
                if local.service == service
            ]
        return statuses.count("RUNNING"), sum(s in ("PROVISIONING", "PENDING") for s in statuses)

    # --- views -----------------------------------------------------------------------------------

    def describe(self, task: Any) -> dict[str, Any]:
        """The task as DescribeTasks shows it, timestamps as ISO strings: the event's detail."""
        return _jsonable(self.ecs.describe_tasks(cluster=self.cluster, tasks=[task.task_arn])["tasks"][0])

    def running(self, *, service: bool | None = None, provider: str | None = None) -> list[LocalTask]:
        with self._lock:
            out = []
            for arn, local in self.tasks.items():
                task = self.backend.tasks[self.cluster][arn]
                if task.last_status != "RUNNING" or local.stop_requested_at is not None:
                    continue
                if service is not None and (local.service is not None) != service:
                    continue
                if provider is not None and task.capacity_provider_name != provider:
                    continue
                out.append(local)
            return out

    def live_count(self) -> int:
        with self._lock:
            return sum(1 for arn in self.tasks if self.backend.tasks[self.cluster][arn].last_status != "STOPPED")

    def shutdown(self) -> None:
        """Kill every task process and its descendants (the worker runs each job in a session of its own)."""
        with self._lock:
            for local in self.tasks.values():
                if local.process is not None and local.process.poll() is None:
                    for pid in [local.process.pid, *_descendants(local.process.pid)]:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                    local.process.wait()


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``, from the parent ids in /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _jsonable(node: Any) -> Any:
    if isinstance(node, datetime):
        return node.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(node, dict):
        return {key: _jsonable(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_jsonable(item) for item in node]
    return node
