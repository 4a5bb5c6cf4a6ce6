"""Room under the concurrency cap (MAX_CONCURRENT_TASKS), counted with ListTasks at most once per SQS batch."""

from __future__ import annotations

from jobs.errors import RequestRejected, Throttled, TransientAwsError
from lifecycle.dispatch_rules import cap_reason
from lifecycle.ports import EcsPort


class Capacity:
    """The batch's view of how many training tasks are active: counted on first use, then kept up to date
    with the tasks the batch itself started."""

    def __init__(self, ecs: EcsPort, families: tuple[str, ...], maximum: int) -> None:
        self._ecs = ecs
        self._families = families
        self._maximum = maximum
        self._active: int | None = None
        self._error: str | None = None

    def room(self, tasks: int = 1) -> tuple[bool, str]:
        """Whether `tasks` more training tasks fit (a gang counts all its ranks), and if not, why."""
        if self._active is None and self._error is None:
            try:
                self._active = self._ecs.count_active(self._families)
            except (Throttled, TransientAwsError, RequestRejected) as exc:
                self._error = f"waiting: could not count active tasks ({exc})"
        if self._active is None:
            return False, self._error or "waiting: active task count unknown"
        if self._active + tasks > self._maximum:
            needs = f"; this job needs {tasks}" if tasks > 1 else ""
            return False, cap_reason(self._active, self._maximum) + needs
        return True, ""

    def took(self, tasks: int) -> None:
        if self._active is not None:
            self._active += tasks
