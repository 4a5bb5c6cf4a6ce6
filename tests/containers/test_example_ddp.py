"""The data-parallel example (worker.example_ddp): two real rank processes exchanging gradients with JAX's
gloo collectives on 127.0.0.1. It must train exactly what the single-task example trains, and after SIGTERM to one
rank, stop both ranks at one step, checkpoint it and resume from it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import numpy as np

from tests.containers.helpers import PYTHON, subprocess_env, wait_until

ARGS = ["--steps", "60", "--checkpoint-every", "5", "--samples", "500", "--seed", "3"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gang(root: Path, attempt: int, *extra: str) -> list[subprocess.Popen[str]]:
    port = str(free_port())
    return [
        subprocess.Popen(
            [PYTHON, "-m", "worker.example_ddp", *ARGS, *extra],
            env=subprocess_env(
                RANK=str(rank),
                WORLD_SIZE="2",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
                TRAIN_JOB_ID="ddp",
                TRAIN_ATTEMPT=str(attempt),
                TRAIN_ARTIFACTS_URI=str(root / "jobs" / "ddp") + "/",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]


def finish(ranks: list[subprocess.Popen[str]]) -> list[tuple[int, str]]:
    return [(p.wait(timeout=120), p.stdout.read() if p.stdout else "") for p in ranks]


def weights(path: Path) -> np.ndarray:
    model = json.loads(path.read_text())
    return np.array([*model["weights"], model["bias"]])


def test_two_ranks_train_what_one_task_trains(tmp_path: Path) -> None:
    single = subprocess.run(
        [PYTHON, "-m", "worker.example_train", *ARGS, "--step-seconds", "0"],
        env=subprocess_env(TRAIN_JOB_ID="one", TRAIN_ARTIFACTS_URI=str(tmp_path / "jobs" / "one") + "/"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert single.returncode == 0, single.stdout + single.stderr
    results = finish(start_gang(tmp_path, 1, "--step-seconds", "0"))
    assert [code for code, _ in results] == [0, 0], results
    assert "model written" in results[0][1] and "model written" not in results[1][1]  # rank 0 publishes
    # The full-batch gradient is the sum of the shards' gradients: same model, up to float rounding.
    assert np.allclose(
        weights(tmp_path / "models" / "ddp" / "model.json"), weights(tmp_path / "models" / "one" / "model.json")
    )


def test_sigterm_to_one_rank_stops_both_at_a_checkpoint_and_the_gang_resumes(tmp_path: Path) -> None:
    checkpoint = tmp_path / "jobs" / "ddp" / "checkpoints" / "checkpoint.json"
    ranks = start_gang(tmp_path, 1, "--step-seconds", "0.05")
    wait_until(checkpoint.exists, what="rank 0's first checkpoint")
    ranks[1].send_signal(signal.SIGTERM)
    results = finish(ranks)
    assert [code for code, _ in results] == [143, 143], results
    stopped_at = json.loads(checkpoint.read_text())["step"]
    assert 0 < stopped_at < 60
    assert f"stop requested; checkpointed at step {stopped_at}" in results[0][1]
    assert f"stop requested; stopping at step {stopped_at}" in results[1][1]

    resumed = finish(start_gang(tmp_path, 2, "--step-seconds", "0"))
    assert [code for code, _ in resumed] == [0, 0], resumed
    for _, output in resumed:
        assert f"attempt 2: resumed from step {stopped_at}" in output
    model = json.loads((tmp_path / "models" / "ddp" / "model.json").read_text())
    assert model["resumed_from_step"] == stopped_at and model["ranks"] == 2
