"""The example training entrypoint: trains, checkpoints, resumes after SIGTERM, publishes the model."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.containers.helpers import BUCKET, PYTHON, REPO, subprocess_env, wait_until
from worker import example_train as et


def _config(tmp_path: Path, *args: str, **env: str) -> et.Config:
    environ = {"TRAIN_JOB_ID": "job-1", "TRAIN_ARTIFACTS_URI": f"{tmp_path}/jobs/job-1/", **env}
    return et.parse_config(["--step-seconds", "0", *args], environ)


def test_trains_and_publishes_model_and_pointer(tmp_path: Path) -> None:
    assert et.Trainer(_config(tmp_path, "--steps", "60")).run() == 0

    model = json.loads((tmp_path / "models/job-1/model.json").read_text())
    assert model["format"] == et.MODEL_FORMAT
    assert model["job_id"] == "job-1"
    assert model["features"] == ["x0", "x1", "x2", "x3"]
    assert len(model["weights"]) == 4
    assert model["metrics"]["accuracy"] > 0.7
    assert model["resumed_from_step"] == 0
    pointer = json.loads((tmp_path / "models/LATEST").read_text())
    assert pointer == {
        "job_id": "job-1",
        "model_uri": f"{tmp_path}/models/job-1/model.json",
        "created_at": model["created_at"],
    }
    checkpoint = json.loads((tmp_path / "jobs/job-1/checkpoints/checkpoint.json").read_text())
    assert checkpoint["step"] == 60


def test_stop_request_checkpoints_and_next_attempt_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    class StopAfter(et.Trainer):
        def _save_checkpoint(self, step: int, w: Any, b: float) -> None:
            super()._save_checkpoint(step, w, b)
            if step == 30:
                self.stop()

    assert StopAfter(_config(tmp_path, "--steps", "100", "--checkpoint-every", "10")).run() == et.EXIT_INTERRUPTED
    assert not (tmp_path / "models/job-1/model.json").exists()
    saved = json.loads((tmp_path / "jobs/job-1/checkpoints/checkpoint.json").read_text())
    assert saved["step"] == 30

    resumed = et.Trainer(_config(tmp_path, "--steps", "100", TRAIN_ATTEMPT="2"))
    assert resumed.run() == 0
    assert "attempt 2: resumed from step 30" in capsys.readouterr().out
    model = json.loads((tmp_path / "models/job-1/model.json").read_text())
    assert model["resumed_from_step"] == 30
    assert model["attempt"] == 2


def test_resumed_run_matches_uninterrupted_run(tmp_path: Path) -> None:
    """Same data on every attempt, so a resume continues the same optimisation."""
    straight = tmp_path / "a"
    et.Trainer(_config(straight, "--steps", "40")).run()
    split = tmp_path / "b"
    et.Trainer(_config(split, "--steps", "20")).run()
    et.Trainer(_config(split, "--steps", "40", TRAIN_ATTEMPT="2")).run()
    a = json.loads((straight / "models/job-1/model.json").read_text())
    b = json.loads((split / "models/job-1/model.json").read_text())
    assert a["weights"] == pytest.approx(b["weights"])


def test_sigterm_to_process_checkpoints_and_exits_143(tmp_path: Path) -> None:
    env = subprocess_env(TRAIN_JOB_ID="sig", TRAIN_ARTIFACTS_URI=f"file://{tmp_path}/jobs/sig/")
    checkpoint = tmp_path / "jobs/sig/checkpoints/checkpoint.json"
    args = ["--steps", "100000", "--checkpoint-every", "5", "--step-seconds", "0.005"]
    proc = subprocess.Popen(
        [PYTHON, "-m", "worker.example_train", *args], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        wait_until(checkpoint.exists, what="first checkpoint")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == et.EXIT_INTERRUPTED
    assert "checkpointing and stopping" in out
    assert json.loads(checkpoint.read_text())["step"] > 0


def test_s3_layout(s3: Any) -> None:
    environ = {
        "TRAIN_JOB_ID": "j-s3",
        "TRAIN_ATTEMPT": "1",
        "TRAIN_ARTIFACTS_URI": f"s3://{BUCKET}/jobs/j-s3/",
        "TRAIN_CHECKPOINT_URI": f"s3://{BUCKET}/jobs/j-s3/checkpoints/",
    }
    assert et.Trainer(et.parse_config(["--steps", "20", "--step-seconds", "0"], environ)).run() == 0
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {"models/j-s3/model.json", "jobs/j-s3/checkpoints/checkpoint.json", "models/LATEST"}
    pointer = json.loads(s3.get_object(Bucket=BUCKET, Key="models/LATEST")["Body"].read())
    assert pointer["model_uri"] == f"s3://{BUCKET}/models/j-s3/model.json"


def test_s3_errors_other_than_missing_key_propagate(aws: None) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        et.read_bytes("s3://no-such-bucket/x")
    assert et.read_bytes("file:///nonexistent/dir/x") is None


@pytest.mark.parametrize(
    ("artifacts", "expected"),
    [
        ("s3://b/jobs/j1/", "s3://b/models/LATEST"),
        ("s3://b/jobs/j1", "s3://b/models/LATEST"),
        ("s3://b/custom/prefix/", "s3://b/custom/prefix/models/LATEST"),
        ("/tmp/x/jobs/j1/", "/tmp/x/models/LATEST"),
    ],
)
def test_pointer_and_model_location(artifacts: str, expected: str) -> None:
    assert et.pointer_uri(artifacts, "j1") == expected
    assert et.model_uri(artifacts, "j1") == expected.replace("LATEST", "j1/model.json")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRAIN_ATTEMPT": "zero"}, "TRAIN_ATTEMPT must be a positive integer"),
        ({"TRAIN_ATTEMPT": "0"}, "TRAIN_ATTEMPT must be a positive integer"),
        ({"TRAIN_ARTIFACTS_URI": "gs://bucket/x/"}, "TRAIN_ARTIFACTS_URI must be an s3://"),
        ({"TRAIN_CHECKPOINT_URI": "s3:///nokey"}, "TRAIN_CHECKPOINT_URI has no bucket"),
    ],
)
def test_bad_environment_exits_2_with_message(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert et.main(["--steps", "1"]) == et.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_bad_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        et.parse_config(["--steps", "-3"], {})
    assert exit_info.value.code == 2
    assert "--steps: must be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is unreadable"),
        ('{"step": 3}', "is unreadable"),
        ('{"step": 3, "weights": [1.0, 2.0], "bias": 0}', "has 2 features, expected 4"),
    ],
)
def test_unusable_checkpoint_is_a_clear_error(
    tmp_path: Path, content: str, message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "jobs/local/checkpoints/checkpoint.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    monkeypatch.setenv("TRAIN_ARTIFACTS_URI", f"{tmp_path}/jobs/local/")
    monkeypatch.setattr(et.signal, "signal", lambda *_: None)  # keep pytest's own handlers
    assert et.main(["--steps", "5", "--step-seconds", "0"]) == et.EXIT_USAGE
    assert message in capsys.readouterr().err
