"""Data-parallel version of ``worker.example_train``: each rank trains on its shard, gradients are averaged
across ranks with JAX multi-process collectives (gloo on CPU) every step.

Run as a rank of a distributed job (``nodes: 2``, command ``python -m worker.example_ddp --steps N``). It reads
``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``, ``MASTER_PORT`` (the coordinator is rank 0) and the ``TRAIN_*``
variables of ``example_train``. Rank 0 loads the checkpoint and sends it to every rank (so all start from the
same step), writes a checkpoint every ``--checkpoint-every`` steps, and publishes the model at the end.

On SIGTERM (a Spot interruption, or the gang being stopped) a rank raises a stop flag that travels with its
gradients, so every rank stops at the same step, rank 0 checkpoints it, and all exit 143. A rank whose peers are
gone would wait in a collective forever: a watchdog then exits 143 after ``--stop-grace`` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

import numpy as np

from worker.example_train import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    MODEL_FORMAT,
    Config,
    UsageError,
    _now,
    _sigmoid,
    join_uri,
    loss_and_accuracy,
    make_data,
    model_uri,
    parse_config,
    pointer_uri,
    read_bytes,
    write_bytes,
)


class Rank:
    """One process of the gang: its shard, the collectives, the checkpoint (rank 0)."""

    def __init__(self, config: Config, rank: int, world: int, stop_grace: float) -> None:
        self.config, self.rank, self.world, self.stop_grace = config, rank, world, stop_grace
        self.stop_signal: int | None = None
        self.checkpoint_key = join_uri(config.checkpoint_uri, "checkpoint.json")

    def stop(self, signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
            watchdog = threading.Timer(self.stop_grace, os._exit, args=(EXIT_INTERRUPTED,))
            watchdog.daemon = True
            watchdog.start()

    def say(self, text: str) -> None:
        print(
            f"rank {self.rank} of {self.world}, job {self.config.job_id} attempt {self.config.attempt}: {text}",
            flush=True,
        )

    def run(self, allgather: Any) -> int:
        cfg = self.config
        x, y = make_data(cfg.samples, cfg.features, cfg.seed)
        x, y = x[self.rank :: self.world], y[self.rank :: self.world]  # this rank's shard
        start, w, b = self._restore(allgather)
        self.say(f"resumed from step {start}" if start else "starting at step 0")
        step = start
        while step < cfg.steps:
            err = _sigmoid(x @ w + b) - y
            local = np.concatenate([x.T @ err, [err.sum(), len(y), float(self.stop_signal is not None)]])
            gathered = np.asarray(allgather(local))  # (world, features + 3): every rank's gradient sums
            total = gathered.sum(axis=0)
            if total[-1]:  # some rank was told to stop: all stop at this step
                if self.rank == 0:
                    self._save(step, w, b)
                self.say(f"stop requested; {'checkpointed' if self.rank == 0 else 'stopping'} at step {step}")
                return EXIT_INTERRUPTED
            samples = total[-2]
            w = w - cfg.learning_rate * total[: cfg.features] / samples
            b = float(b - cfg.learning_rate * total[cfg.features] / samples)
            step += 1
            if self.rank == 0 and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                self._save(step, w, b)
                loss, acc = loss_and_accuracy(x, y, w, b)
                self.say(f"step {step}/{cfg.steps} loss={loss:.4f} accuracy={acc:.3f} (shard of rank 0)")
            if cfg.step_seconds:
                threading.Event().wait(cfg.step_seconds)
        if self.rank == 0:
            self._publish(w, b, start)
        return 0

    def _restore(self, allgather: Any) -> tuple[int, np.ndarray, float]:
        """Rank 0 reads the checkpoint; every rank takes rank 0's copy."""
        state = np.zeros(self.config.features + 2)
        if self.rank == 0 and (raw := read_bytes(self.checkpoint_key)) is not None:
            try:
                saved = json.loads(raw)
                state = np.array([saved["step"], *saved["weights"], saved["bias"]], dtype=float)
            except (ValueError, KeyError, TypeError) as exc:
                raise UsageError(f"checkpoint {self.checkpoint_key} is unreadable: {exc}") from None
            if state.size != self.config.features + 2:
                raise UsageError(f"checkpoint {self.checkpoint_key} does not have {self.config.features} features")
        first = np.asarray(allgather(state))[0]
        return int(first[0]), first[1:-1], float(first[-1])

    def _save(self, step: int, w: np.ndarray, b: float) -> None:
        state = {"job_id": self.config.job_id, "attempt": self.config.attempt, "step": step, "weights": w.tolist()}
        write_bytes(
            self.checkpoint_key, json.dumps({**state, "bias": b, "ranks": self.world, "saved_at": _now()}).encode()
        )

    def _publish(self, w: np.ndarray, b: float, resumed_from: int) -> None:
        cfg = self.config
        x, y = make_data(cfg.samples, cfg.features, cfg.seed)
        loss, acc = loss_and_accuracy(x, y, w, b)
        model = {
            "format": MODEL_FORMAT,
            "job_id": cfg.job_id,
            "attempt": cfg.attempt,
            "created_at": _now(),
            "features": [f"x{i}" for i in range(cfg.features)],
            "weights": w.tolist(),
            "bias": b,
            "steps": cfg.steps,
            "resumed_from_step": resumed_from,
            "ranks": self.world,
            "metrics": {"loss": loss, "accuracy": acc},
        }
        target = model_uri(cfg.artifacts_uri, cfg.job_id)
        write_bytes(target, json.dumps(model, indent=1).encode())
        pointer = {"job_id": cfg.job_id, "model_uri": target, "created_at": model["created_at"]}
        write_bytes(pointer_uri(cfg.artifacts_uri, cfg.job_id), json.dumps(pointer).encode())
        self.say(f"model written to {target} (loss={loss:.4f} accuracy={acc:.3f})")


def _rank_environment(environ: os._Environ[str] | dict[str, str]) -> tuple[int, int, str]:
    try:
        rank, world = int(environ["RANK"]), int(environ["WORLD_SIZE"])
        coordinator = f"{environ['MASTER_ADDR']}:{int(environ['MASTER_PORT'])}"
    except (KeyError, ValueError) as exc:
        raise UsageError(
            f"missing or invalid rank environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): {exc}"
        ) from None
    if not 0 <= rank < world:
        raise UsageError(f"RANK {rank} is not in 0..WORLD_SIZE-1 ({world - 1})")
    return rank, world, coordinator


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when trained, 143 when stopped, 2 on a usage error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--stop-grace", type=float, default=10.0, help="seconds to stop together before exiting")
    known, rest = extra.parse_known_args(argv)
    try:
        rank, world, coordinator = _rank_environment(os.environ)
        trainer = Rank(parse_config(rest, os.environ), rank, world, known.stop_grace)
    except UsageError as exc:
        print(f"example_ddp: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    import jax  # only this example needs JAX

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_x64", True)  # average float64 gradients, as the single-task example does
    jax.config.update("jax_enable_preemption_service", False)  # SIGTERM is this example's to handle
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=world, process_id=rank)
    from jax.experimental import multihost_utils

    signal.signal(signal.SIGTERM, trainer.stop)
    signal.signal(signal.SIGINT, trainer.stop)
    try:
        code = trainer.run(multihost_utils.process_allgather)
    except UsageError as exc:
        print(f"example_ddp: error: {exc}", file=sys.stderr)
        code = EXIT_USAGE
    if code == 0:
        jax.distributed.shutdown()  # a barrier: every rank got here
        return 0
    sys.stdout.flush()
    os._exit(code)  # skip JAX's exit-time shutdown barrier, which would wait for ranks that may be gone


if __name__ == "__main__":
    sys.exit(main())
