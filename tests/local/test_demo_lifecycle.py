"""The demo stops everything it started: on Ctrl-C and when the scenario fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from local.agent import AgentEndpoint
from local.ecs import EcsEmulator, _descendants

REPO = Path(__file__).resolve().parents[2]


def _start(out: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return subprocess.Popen(
        [sys.executable, "-m", "local", "--jobs", "2", "--out", str(out), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    demo = _start(tmp_path)
    assert demo.stdout is not None
    for line in demo.stdout:  # wait until workers and jobs are running
        if "workers desired" in line and "running 0 " not in line:
            break
    started = _descendants(demo.pid)
    assert started, "the demo started no processes"
    demo.send_signal(signal.SIGINT)
    assert demo.wait(timeout=60) == 130
    assert "everything the demo started has been stopped" in demo.stderr.read() if demo.stderr else False
    time.sleep(0.5)
    assert _alive(started) == []


def test_a_scenario_that_does_not_finish_fails_clearly_and_leaves_its_record(tmp_path: Path) -> None:
    demo = _start(tmp_path, "--timeout", "1")
    _, err = demo.communicate(timeout=300)
    assert demo.returncode == 1
    assert "demo failed: not finished after 1 s" in err
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["finished"] is False and record["samples"]


def test_service_tasks_fill_the_base_then_follow_the_weights() -> None:
    strategy = [
        {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
        {"CapacityProvider": "FARGATE_SPOT", "Weight": 3},
    ]
    tasks: dict[str, SimpleNamespace] = {}
    backend = SimpleNamespace(tasks={"c": tasks})
    agent = AgentEndpoint()
    try:
        emulator = EcsEmulator(
            ecs=None,
            logs=None,
            backend=backend,
            cluster="c",
            service_strategies={"svc": strategy},
            image_commands={},
            agent=agent,
            task_env={},
            emit=lambda _: None,
            logs_dir=Path("."),
        )
        placed = []
        for i in range(5):
            provider = emulator._next_provider("svc", list(tasks))
            tasks[f"t{i}"] = SimpleNamespace(capacity_provider_name=provider)
            placed.append(provider)
    finally:
        agent.close()
    assert placed[0] == "FARGATE"  # the base comes first
    assert placed[1:] == ["FARGATE_SPOT", "FARGATE_SPOT", "FARGATE_SPOT", "FARGATE"]  # then 3:1
