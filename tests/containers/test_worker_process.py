"""The child-process supervisor: output streaming, timeout, signal forwarding, grace then SIGKILL."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

from lifecycle.worker_jobs import Outcome, Result
from tests.containers.helpers import PYTHON, wait_until
from worker.process import exit_description, supervise


def _never() -> Outcome | None:
    return None


def run(
    code: str,
    tmp_path: Path,
    *,
    timeout_s: float = 60,
    grace_s: float = 5,
    check: Callable[[], Outcome | None] = _never,
) -> tuple[Result, str]:
    sink = io.BytesIO()
    result = supervise(
        [PYTHON, "-c", code],
        env={**os.environ, "STATE": str(tmp_path)},
        cwd=str(tmp_path),
        timeout_s=timeout_s,
        grace_s=grace_s,
        check=check,
        prefix="job#1",
        sink=sink,
    )
    return result, sink.getvalue().decode()


def test_output_is_prefixed_and_exit_code_reported(tmp_path: Path) -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr, flush=True); sys.stdout.write('tail'); sys.exit(4)"
    result, out = run(code, tmp_path)
    assert (result.outcome, result.exit_code, result.detail) == (Outcome.EXITED, 4, "exit code 4")
    assert sorted(out.splitlines()) == ["[job#1] err", "[job#1] out", "[job#1] tail"]


def test_runs_in_the_given_directory_with_the_given_environment(tmp_path: Path) -> None:
    result, out = run("import os; print(os.getcwd() == os.environ['STATE'])", tmp_path)
    assert result.exit_code == 0
    assert out == "[job#1] True\n"


def test_timeout_sends_sigterm(tmp_path: Path) -> None:
    code = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\ntime.sleep(600)"
    result, _ = run(code, tmp_path, timeout_s=0.5)
    assert (result.outcome, result.exit_code) == (Outcome.TIMED_OUT, 7)


def test_stop_reason_forwards_sigterm_to_whole_process_group(tmp_path: Path) -> None:
    """A shell wrapper does not forward signals; the group signal still reaches the real job."""
    grandchild = tmp_path / "grandchild.py"
    grandchild.write_text(
        "import pathlib, signal, sys, time\n"
        f"state = pathlib.Path({str(tmp_path)!r})\n"
        "signal.signal(signal.SIGTERM, lambda *_: ((state / 'got-term').touch(), sys.exit(0)))\n"
        "(state / 'ready').touch()\n"
        "time.sleep(600)\n"
    )
    code = f"import subprocess; subprocess.run('{PYTHON} {grandchild}', shell=True)"
    ready = tmp_path / "ready"
    result, _ = run(code, tmp_path, check=lambda: Outcome.INTERRUPTED if ready.exists() else None)
    assert result.outcome == Outcome.INTERRUPTED
    wait_until((tmp_path / "got-term").exists, what="grandchild got SIGTERM")


def test_child_ignoring_sigterm_is_killed_after_grace(tmp_path: Path) -> None:
    """The cancel comes only once the child ignores SIGTERM (before that, SIGTERM would simply end it)."""
    code = (
        "import os, pathlib, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "(pathlib.Path(os.environ['STATE']) / 'ready').touch()\ntime.sleep(600)"
    )
    ready = tmp_path / "ready"
    result, _ = run(code, tmp_path, grace_s=0.2, check=lambda: Outcome.CANCELLED if ready.exists() else None)
    assert (result.outcome, result.exit_code) == (Outcome.CANCELLED, -9)
    assert result.detail == "killed by SIGKILL after the 0.2 s grace"


def test_missing_program_is_not_started(tmp_path: Path) -> None:
    result = supervise(
        ["/definitely/not/here"],
        env={},
        cwd=str(tmp_path),
        timeout_s=5,
        grace_s=1,
        check=lambda: None,
        prefix="p",
        sink=io.BytesIO(),
    )
    assert result.outcome == Outcome.NOT_STARTED
    assert "cannot start '/definitely/not/here'" in result.detail


def test_exit_descriptions() -> None:
    assert exit_description(0) == "exit code 0"
    assert exit_description(-15) == "killed by SIGTERM"
    assert exit_description(-200) == "exit code -200"
