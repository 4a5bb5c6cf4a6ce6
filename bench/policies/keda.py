"""Peer 4: a KEDA-style poller (ScaledObject on the aws-sqs-queue scaler, aws-facts §4).

Every 30 s KEDA reads the queue (GetQueueAttributes: visible + in flight, ``scaleOnInFlight``
default) and activates the service from 0 to 1; between 1 and N the HPA (sync every 15 s)
sets ceil(messages / queueLength) with its defaults: scale-up at most max(4 pods, double)
per 60 s, scale-down to the highest recommendation of the last 300 s. After 300 s with no
messages (cooldownPeriod) it scales to 0. Min 0. Workers as in the classic example.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from bench.models import Params
from bench.policies.target_tracking import PeerPolicy
from bench.sim import Ledger, Sim
from bench.workloads import Workload

HPA_SYNC_S = 15.0  # kube-controller-manager --horizontal-pod-autoscaler-sync-period default
HPA_UP_PERIOD_S = 60.0  # the scale-up limits apply per 60 s (autoscaling/v2 API docs, aws-facts §4)


class Keda(PeerPolicy):
    name = "keda"
    label = "KEDA-style poller"
    summary = "poll 30 s, queueLength 1, in-flight counted, HPA defaults between 1 and N, cooldown 300 s to 0, min 0"

    def __init__(self, sim: Sim, p: Params, rng: np.random.Generator, ledger: Ledger, workload: Workload) -> None:
        super().__init__(sim, p, rng, ledger, workload, 0)
        self.messages = 0  # newest reading
        self.last_active = -math.inf
        self.recommendations: deque[tuple[float, int]] = deque()
        self.history: deque[tuple[float, int]] = deque([(0.0, 0)])  # (t, desired set then)
        sim.every(p.keda_poll_s, self._poll)
        sim.every(HPA_SYNC_S, self._hpa, first=HPA_SYNC_S / 2)

    def _read(self) -> int:
        self.ledger.calls["GetQueueAttributes"] += 1
        self.queue.touch()
        visible, in_flight, _ = self.queue.read_counts()
        return visible + in_flight

    def _poll(self) -> None:
        """KEDA's own loop: activation (0 -> 1) and deactivation after the cooldown."""
        now = self.sim.now
        self.messages = self._read()
        if self.messages > 0:
            self.last_active = now
            if self.service.desired == 0:
                self._set(1)
        elif self.service.desired > 0 and now - self.last_active >= self.p.keda_cooldown_s:
            self.recommendations.clear()
            self._set(0)

    def _hpa(self) -> None:
        """The HPA between 1 and N replicas (inactive while KEDA holds the target at 0)."""
        now, desired, p = self.sim.now, self.service.desired, self.p
        if desired == 0:
            return
        raw = max(1, min(p.max_tasks, math.ceil(self._read() / p.keda_queue_length)))
        self.recommendations.append((now, raw))
        while self.recommendations[0][0] < now - p.hpa_down_window_s:
            self.recommendations.popleft()
        if raw > desired:  # no scale-up stabilization; at most max(+4, x2) per 60 s
            base = self._desired_at(now - HPA_UP_PERIOD_S)
            new = min(raw, max(base + p.hpa_up_pods, 2 * base))
        else:  # scale down only to the highest recommendation of the window
            new = min(desired, max(r for _, r in self.recommendations))
        if new != desired:
            self._set(new)

    def _desired_at(self, t: float) -> int:
        while len(self.history) > 1 and self.history[1][0] <= t:
            self.history.popleft()
        return self.history[0][1]

    def _set(self, desired: int) -> None:
        self.history.append((self.sim.now, desired))
        self.service.set_desired(desired)
