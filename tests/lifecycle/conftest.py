"""The lifecycle on fakes: an in-memory job store, a fake cluster, fake queues and a manual clock (no moto)."""

from __future__ import annotations

import pytest

from fakes.clock import ManualClock
from fakes.ecs import FakeEcs
from fakes.queues import FakeQueues
from fakes.store import InMemoryJobStore


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store() -> InMemoryJobStore:
    return InMemoryJobStore()


@pytest.fixture
def queues() -> FakeQueues:
    return FakeQueues()


@pytest.fixture
def ecs(clock: ManualClock) -> FakeEcs:
    return FakeEcs(clock)
