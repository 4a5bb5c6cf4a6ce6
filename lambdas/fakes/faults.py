"""Faults a test queues on a fake's operations: an error to raise, or an action to run first (a competing write)."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable

Fault = BaseException | Callable[[], object]


class FaultInjection:
    """Base of the fakes: `inject(operation, fault)` arms the next call(s) of the method named `operation`."""

    def __init__(self) -> None:
        self._faults: defaultdict[str, deque[Fault]] = defaultdict(deque)

    def inject(self, operation: str, fault: Fault, *, times: int = 1) -> None:
        """The next `times` calls of `operation` first raise `fault`, or call it (then go on as usual)."""
        if not callable(getattr(self, operation, None)):
            raise ValueError(f"{type(self).__name__} has no operation {operation!r}")
        self._faults[operation].extend([fault] * times)

    def _fire(self, operation: str) -> None:
        pending = self._faults.get(operation)
        if not pending:
            return
        fault = pending.popleft()
        if isinstance(fault, BaseException):
            raise fault
        fault()
