"""lifecycle.finished on fakes: one metric line per finished job, and its end counted on its parent."""

from __future__ import annotations

import json
import logging

import pytest

from fakes.clock import ManualClock
from fakes.store import InMemoryJobStore
from jobs.states import JobState
from lifecycle.finished import job_finished

S = JobState


def test_a_job_not_finished_emits_nothing(store: InMemoryJobStore, clock: ManualClock) -> None:
    _, job = store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=clock())
    lines: list[str] = []
    job_finished(store, job, clock(), emit=lines.append)
    assert lines == []


def test_a_finished_job_emits_its_metric_line(store: InMemoryJobStore, clock: ManualClock) -> None:
    store.create_if_absent("j1", state=S.SUBMITTED, attempt=1, now=clock(), queue="dispatch")
    store.transition("j1", S.RUNNING, expected_states=S.SUBMITTED, expected_attempt=1, now=clock())
    job = store.transition(
        "j1", S.SUCCEEDED, expected_states=S.RUNNING, expected_attempt=1, now=clock(), cost_usd=0.25, vcpu_seconds=60.0
    )
    lines: list[str] = []
    job_finished(store, job, clock(), emit=lines.append)
    (line,) = lines
    metric = json.loads(line)
    assert (metric["job_id"], metric["State"], metric["Queue"]) == ("j1", "SUCCEEDED", "dispatch")
    assert (metric["JobCostUSD"], metric["JobVcpuSeconds"], metric["JobSavingUSD"]) == (0.25, 60.0, 0.0)
    assert "parent_id" not in metric


def test_a_finished_child_is_counted_on_its_parent(store: InMemoryJobStore, clock: ManualClock) -> None:
    store.create_if_absent("p", state=S.SUBMITTED, attempt=1, now=clock(), kind="array", array_size=2, enqueued=2)
    _, child = store.create_if_absent("p-0", state=S.REJECTED, attempt=1, now=clock(), parent_id="p", reason="bad")
    lines: list[str] = []
    job_finished(store, child, clock(), emit=lines.append)
    assert json.loads(lines[0])["parent_id"] == "p"
    assert store.get("p").extra["children_finished"] == 1  # type: ignore[union-attr]


def test_a_parent_that_cannot_be_updated_is_logged_not_raised(
    store: InMemoryJobStore, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    _, child = store.create_if_absent("gone-0", state=S.REJECTED, attempt=1, now=clock(), parent_id="gone")
    lines: list[str] = []
    with caplog.at_level(logging.ERROR, logger="lifecycle.finished"):
        job_finished(store, child, clock(), emit=lines.append)
    assert len(lines) == 1 and "could not update the parent of finished job gone-0" in caplog.text


def test_the_metric_line_goes_to_stdout_by_default(
    store: InMemoryJobStore, clock: ManualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    _, job = store.create_if_absent("j1", state=S.REJECTED, attempt=1, now=clock(), reason="bad")
    job_finished(store, job, clock())
    assert json.loads(capsys.readouterr().out)["job_id"] == "j1"
