"""Run a job's command as a child process: stream its output, enforce its timeout, forward signals.

The child runs in its own process group so a signal reaches the whole job (shell wrappers included). Its merged
stdout/stderr is copied line by line to the worker's stdout (CloudWatch Logs in AWS) with a ``[job_id#attempt]``
prefix, which is how ``trainctl logs`` finds a job's lines in a worker's log stream.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO

from lifecycle.worker_jobs import Outcome, Result


def exit_description(code: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL`` (Popen reports signals as negative codes)."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _copy_output(stream: IO[bytes], prefix: bytes, sink: IO[bytes]) -> None:
    for line in iter(stream.readline, b""):
        sink.write(prefix + (line if line.endswith(b"\n") else line + b"\n"))
        sink.flush()
    stream.close()


def supervise(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    timeout_s: float,
    grace_s: float,
    check: Callable[[], Outcome | None],
    prefix: str,
    sink: IO[bytes],
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = 0.1,
) -> Result:
    """Run ``command`` to its end. When ``check()`` returns a reason to stop (or the timeout passes), send
    SIGTERM to the child's process group, wait up to ``grace_s`` for the whole group to exit, then SIGKILL what is
    left. Returns how it ended."""
    try:
        child = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return Result(Outcome.NOT_STARTED, None, f"cannot start {command[0]!r}: {exc.strerror or exc}")
    assert child.stdout is not None
    copier = threading.Thread(
        target=_copy_output, args=(child.stdout, f"[{prefix}] ".encode(), sink), name=f"output-{prefix}", daemon=True
    )
    copier.start()
    deadline = clock() + timeout_s
    reason: Outcome | None = None
    signalled_at = 0.0
    killed = False
    while True:
        try:
            code = child.wait(timeout=poll_s)
            break
        except subprocess.TimeoutExpired:
            pass
        if reason is None:
            reason = check() or (Outcome.TIMED_OUT if clock() >= deadline else None)
            if reason is not None:
                signalled_at = clock()
                _signal_group(child, signal.SIGTERM)
        elif not killed and clock() - signalled_at >= grace_s:
            _signal_group(child, signal.SIGKILL)
            killed = True
    if reason is not None and not killed:
        # The leader may exit before the rest of its group (e.g. a job under a shell wrapper) has handled the
        # SIGTERM: the whole group gets what is left of the grace, not only the leader.
        while _group_alive(child) and clock() - signalled_at < grace_s:
            time.sleep(poll_s)
    _signal_group(child, signal.SIGKILL)  # leftovers of the job's process group, if any
    copier.join(timeout=5)
    if reason is None:
        return Result(Outcome.EXITED, code, exit_description(code))
    detail = exit_description(code) + (f" after the {grace_s:g} s grace" if killed else "")
    return Result(reason, code, detail)


def _group_alive(child: subprocess.Popen[bytes]) -> bool:
    try:
        os.killpg(child.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)
