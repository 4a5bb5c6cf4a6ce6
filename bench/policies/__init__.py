"""The policies compared side by side (the lower bound is computed, not simulated)."""

from __future__ import annotations

from bench.policies.base import Policy
from bench.policies.dedicated import OursDedicated
from bench.policies.keda import Keda
from bench.policies.ours import OursWorker
from bench.policies.qpfs import Qpfs
from bench.policies.target_tracking import TargetTracking

POLICIES: dict[str, type[Policy]] = {cls.name: cls for cls in (OursDedicated, OursWorker, TargetTracking, Qpfs, Keda)}
OURS = (OursDedicated.name, OursWorker.name)

__all__ = ["OURS", "POLICIES", "Policy"]
