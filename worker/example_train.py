"""Example training job: NumPy logistic regression on generated data that checkpoints and resumes.

Run as ``python -m worker.example_train [--steps N ...]``. It reads the environment every job gets:

- ``TRAIN_JOB_ID``, ``TRAIN_ATTEMPT``;
- ``TRAIN_CHECKPOINT_URI``: prefix of ``checkpoint.json``, written every ``--checkpoint-every`` steps and on
  SIGTERM/SIGINT (then the process exits 143 so the worker can requeue it); a later attempt resumes from it;
- ``TRAIN_ARTIFACTS_URI``: the job's artifacts prefix ``s3://<bucket>/jobs/<job_id>/``.

Model layout (what ``serving/`` reads): the model goes to ``s3://<bucket>/models/<job_id>/model.json``, then the
pointer ``s3://<bucket>/models/LATEST`` (JSON ``{"job_id", "model_uri", "created_at"}``) is overwritten to name it.
The bucket root is the artifacts URI without its ``jobs/<job_id>/`` suffix.
URIs are ``s3://``, ``file://`` or plain paths.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

MODEL_FORMAT = "logistic-regression/v1"
MODELS_PREFIX = "models/"
POINTER_KEY = MODELS_PREFIX + "LATEST"
EXIT_INTERRUPTED = 143  # 128 + SIGTERM, the shell convention for "terminated by a signal"
EXIT_USAGE = 2


class UsageError(Exception):
    """A bad option or environment variable (exit code 2)."""


# --- storage: s3://bucket/key, file:///path or a plain path ---------------------------------------


def join_uri(prefix: str, name: str) -> str:
    """``prefix`` + ``name`` with exactly one ``/`` between them."""
    return prefix.rstrip("/") + "/" + name


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise UsageError(f"not an s3://bucket/key URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def _local_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path)) if uri.startswith("file://") else Path(uri)


_s3_client: Any = None


def _s3() -> Any:
    global _s3_client
    if _s3_client is None:
        import boto3  # imported lazily: local runs need no boto3

        _s3_client = boto3.client("s3")
    return _s3_client


def read_bytes(uri: str) -> bytes | None:
    """The object's bytes, or None when it does not exist."""
    if uri.startswith("s3://"):
        from botocore.exceptions import ClientError

        bucket, key = _split_s3(uri)
        try:
            body: bytes = _s3().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise
        return body
    path = _local_path(uri)
    return path.read_bytes() if path.is_file() else None


def write_bytes(uri: str, data: bytes, content_type: str = "application/json") -> None:
    """Write atomically (S3 puts are atomic; local files are renamed into place)."""
    if uri.startswith("s3://"):
        bucket, key = _split_s3(uri)
        _s3().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return
    path = _local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def model_root(artifacts_uri: str, job_id: str) -> str:
    """The artifacts URI without its ``jobs/<job_id>/`` suffix (the bucket root in AWS)."""
    root = artifacts_uri.rstrip("/")
    suffix = f"/jobs/{job_id}"
    return root[: -len(suffix)] if root.endswith(suffix) else root


def model_uri(artifacts_uri: str, job_id: str) -> str:
    return join_uri(model_root(artifacts_uri, job_id), f"{MODELS_PREFIX}{job_id}/model.json")


def pointer_uri(artifacts_uri: str, job_id: str) -> str:
    return join_uri(model_root(artifacts_uri, job_id), POINTER_KEY)


# --- configuration --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """Validated options and environment of one run."""

    job_id: str
    attempt: int
    checkpoint_uri: str
    artifacts_uri: str
    steps: int
    checkpoint_every: int
    step_seconds: float
    samples: int
    features: int
    learning_rate: float
    seed: int


def _positive(kind: type[int] | type[float], minimum: float) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text!r}")
        return value

    return parse


def parse_config(argv: list[str] | None, environ: dict[str, str] | os._Environ[str]) -> Config:
    """Options from ``argv`` and the ``TRAIN_*`` variables; raises UsageError naming what is wrong."""
    parser = argparse.ArgumentParser(
        prog="example_train", description="NumPy logistic regression that checkpoints and resumes."
    )
    parser.add_argument("--steps", type=_positive(int, 1), default=200, help="gradient steps (default 200)")
    parser.add_argument("--checkpoint-every", type=_positive(int, 1), default=20, help="steps between checkpoints")
    parser.add_argument("--step-seconds", type=_positive(float, 0), default=0.02, help="pause per step (demo pacing)")
    parser.add_argument("--samples", type=_positive(int, 2), default=2000, help="generated rows")
    parser.add_argument("--features", type=_positive(int, 1), default=4, help="generated columns")
    parser.add_argument("--learning-rate", type=_positive(float, 1e-9), default=0.5)
    parser.add_argument("--seed", type=_positive(int, 0), default=7, help="data seed (same data on every attempt)")
    args = parser.parse_args(argv)

    job_id = environ.get("TRAIN_JOB_ID") or "local"
    attempt_text = environ.get("TRAIN_ATTEMPT") or "1"
    if not attempt_text.isdigit() or int(attempt_text) < 1:
        raise UsageError(f"TRAIN_ATTEMPT must be a positive integer, got {attempt_text!r}")
    artifacts = environ.get("TRAIN_ARTIFACTS_URI") or f"example-output/jobs/{job_id}/"
    checkpoints = environ.get("TRAIN_CHECKPOINT_URI") or join_uri(artifacts, "checkpoints/")
    for name, uri in (("TRAIN_ARTIFACTS_URI", artifacts), ("TRAIN_CHECKPOINT_URI", checkpoints)):
        if "://" in uri and not uri.startswith(("s3://", "file://")):
            raise UsageError(f"{name} must be an s3://, file:// or plain path, got {uri!r}")
        if uri.startswith("s3://") and not urlparse(uri).netloc:
            raise UsageError(f"{name} has no bucket: {uri!r}")
    return Config(
        job_id=job_id,
        attempt=int(attempt_text),
        checkpoint_uri=checkpoints,
        artifacts_uri=artifacts,
        steps=args.steps,
        checkpoint_every=args.checkpoint_every,
        step_seconds=args.step_seconds,
        samples=args.samples,
        features=args.features,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )


# --- training -------------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


def make_data(samples: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Separable-ish data from a hidden linear model; deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features))
    true_w = rng.normal(scale=2.0, size=features)
    y = (rng.random(samples) < _sigmoid(x @ true_w + 0.5)).astype(float)
    return x, y


def loss_and_accuracy(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> tuple[float, float]:
    p = np.clip(_sigmoid(x @ w + b), 1e-12, 1 - 1e-12)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return loss, float(np.mean((p >= 0.5) == (y == 1.0)))


class Trainer:
    """Gradient descent with checkpoints; ``stop()`` (the SIGTERM handler) makes it checkpoint and return."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop_signal: int | None = None
        self.checkpoint_key = join_uri(config.checkpoint_uri, "checkpoint.json")

    def stop(self, signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        # Only set a flag: printing here could interrupt a print in progress on stdout ("reentrant call").
        self.stop_signal = signum

    def _load_checkpoint(self) -> tuple[int, np.ndarray, float]:
        raw = read_bytes(self.checkpoint_key)
        if raw is None:
            return 0, np.zeros(self.config.features), 0.0
        try:
            state = json.loads(raw)
            weights = np.asarray(state["weights"], dtype=float)
            step, bias = int(state["step"]), float(state["bias"])
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"checkpoint {self.checkpoint_key} is unreadable: {exc}") from None
        if weights.shape != (self.config.features,):
            raise UsageError(
                f"checkpoint {self.checkpoint_key} has {weights.size} features, expected {self.config.features}"
            )
        return step, weights, bias

    def _save_checkpoint(self, step: int, w: np.ndarray, b: float) -> None:
        state = {
            "job_id": self.config.job_id,
            "attempt": self.config.attempt,
            "step": step,
            "weights": w.tolist(),
            "bias": b,
            "saved_at": _now(),
        }
        write_bytes(self.checkpoint_key, json.dumps(state).encode())

    def run(self) -> int:
        """Train to completion (0) or until stopped (143)."""
        cfg = self.config
        x, y = make_data(cfg.samples, cfg.features, cfg.seed)
        start, w, b = self._load_checkpoint()
        if start:
            print(f"job {cfg.job_id} attempt {cfg.attempt}: resumed from step {start}", flush=True)
        else:
            print(f"job {cfg.job_id} attempt {cfg.attempt}: starting at step 0", flush=True)
        step = start
        while step < cfg.steps:
            if self.stop_signal is not None:
                print(f"signal {self.stop_signal}: checkpointing and stopping", flush=True)
                self._save_checkpoint(step, w, b)
                print(f"checkpoint saved at step {step}; exiting for a later attempt", flush=True)
                return EXIT_INTERRUPTED
            err = _sigmoid(x @ w + b) - y
            w = w - cfg.learning_rate * (x.T @ err) / cfg.samples
            b = b - cfg.learning_rate * float(np.mean(err))
            step += 1
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                self._save_checkpoint(step, w, b)
                loss, acc = loss_and_accuracy(x, y, w, b)
                print(f"step {step}/{cfg.steps} loss={loss:.4f} accuracy={acc:.3f}", flush=True)
            if cfg.step_seconds:
                time.sleep(cfg.step_seconds)
        self._publish(w, b, resumed_from=start, x=x, y=y)
        return 0

    def _publish(self, w: np.ndarray, b: float, *, resumed_from: int, x: np.ndarray, y: np.ndarray) -> None:
        cfg = self.config
        loss, acc = loss_and_accuracy(x, y, w, b)
        created_at = _now()
        model = {
            "format": MODEL_FORMAT,
            "job_id": cfg.job_id,
            "attempt": cfg.attempt,
            "created_at": created_at,
            "features": [f"x{i}" for i in range(cfg.features)],
            "weights": w.tolist(),
            "bias": b,
            "steps": cfg.steps,
            "resumed_from_step": resumed_from,
            "metrics": {"loss": loss, "accuracy": acc},
        }
        target = model_uri(cfg.artifacts_uri, cfg.job_id)
        write_bytes(target, json.dumps(model, indent=1).encode())
        pointer = {"job_id": cfg.job_id, "model_uri": target, "created_at": created_at}
        write_bytes(pointer_uri(cfg.artifacts_uri, cfg.job_id), json.dumps(pointer).encode())
        print(f"model written to {target} (loss={loss:.4f} accuracy={acc:.3f})", flush=True)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 when trained, 143 when stopped by a signal, 2 on a usage error."""
    try:
        trainer = Trainer(parse_config(argv, os.environ))
        signal.signal(signal.SIGTERM, trainer.stop)
        signal.signal(signal.SIGINT, trainer.stop)
        return trainer.run()
    except UsageError as exc:
        print(f"example_train: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
