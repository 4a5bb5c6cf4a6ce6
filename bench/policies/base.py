"""What every simulated policy provides to the runner."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from bench.aws import Fargate
from bench.models import Params
from bench.sim import JobRun, Ledger, Sim
from bench.workloads import Workload


class Policy(ABC):
    """One way of running the workload's jobs on Fargate, driven by the simulator."""

    name: ClassVar[str]  # short id used in JSON and on the command line
    label: ClassVar[str]  # row label in the tables
    summary: ClassVar[str]  # one line: what is modelled and which configuration

    def __init__(self, sim: Sim, p: Params, rng: np.random.Generator, ledger: Ledger, workload: Workload) -> None:
        self.sim, self.p, self.rng, self.ledger = sim, p, rng, ledger
        self.fargate = Fargate(sim, p, rng, ledger)
        # Long-lived workers must fit the largest job (trace files mix sizes).
        self.worker_vcpu = max(j.vcpu for j in workload.jobs)
        self.worker_gb = max(j.gb for j in workload.jobs)

    @abstractmethod
    def submit(self, run: JobRun) -> None:
        """A job is submitted (sent to the policy's queue)."""

    @abstractmethod
    def counts(self) -> tuple[int, int, int]:
        """(queue depth = visible messages, desired tasks, running tasks) for the timeline."""
