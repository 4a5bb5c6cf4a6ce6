"""Starting a job's task(s) on the launch plan's capacity providers: one task, or every rank of a gang.

The providers are tried in order (Spot first when allowed); a provider without capacity moves the launch to the
next one. A distributed job's ranks all run on the same provider: when a rank cannot be placed, the ranks already
started there are stopped and the whole gang moves on, so an attempt never mixes Spot and on-demand ranks; when
no provider can take the whole gang, nothing is left running. Client tokens make a repeated call of one launch
idempotent: per (job, attempt, provider) for a single task, per (job, attempt, provider, rank, claim) for a rank
(a relaunch after a takeover, which first stops whatever the lost launch started, is not answered with the
stopped tasks).

What came of it is one of four outcomes; lifecycle.launch records it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from jobs.errors import RequestRejected, Throttled, TransientAwsError
from lifecycle.launch_plan import Launched, LaunchFailed, LaunchPlan, OverridesTooLarge, rank_request, read_run_task
from lifecycle.ports import EcsPort

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    """Every task of the job runs (or is starting) on `provider`."""

    task_arns: tuple[str, ...]
    """Index = rank (one task for a job that is not distributed)."""
    provider: str
    notes: tuple[str, ...] = ()
    """Providers that could not take the job first."""

    @property
    def note(self) -> str | None:
        """The reason recorded with DISPATCHED: why the launch fell back, if it did."""
        return "; ".join((*self.notes, f"launched on {self.provider}")) if self.notes else None


@dataclass(frozen=True)
class Waiting:
    """No task can have started (throttled, or no capacity anywhere): release the claim and defer."""

    reason: str


@dataclass(frozen=True)
class Unknown:
    """A RunTask outcome is unknown (a server error): keep the claim, whose lease makes the deferred copy wait,
    then recover (startedBy / the client token; a gang's takeover stops what may exist)."""

    reason: str


@dataclass(frozen=True)
class Refused:
    """AWS refused the launch, not for capacity (e.g. a missing permission or task definition): to the DLQ."""

    reason: str


LaunchOutcome = Started | Waiting | Unknown | Refused


def start_task(ecs: EcsPort, plan: LaunchPlan) -> LaunchOutcome:
    """Start the job's task on the first provider with capacity."""
    notes: list[str] = []
    for provider in plan.providers:
        try:
            response = ecs.run_task(plan.request(provider))
        except Throttled as exc:  # a throttled call did nothing
            return Waiting(f"waiting: RunTask on {provider} throttled after retries ({exc})")
        except TransientAwsError as exc:  # a 5xx: the task may or may not exist
            return Unknown(f"waiting: RunTask on {provider} failed ({exc}); outcome unknown")
        except RequestRejected as exc:
            return Refused(f"RunTask rejected the launch: {exc}")
        outcome = read_run_task(response, provider)
        if isinstance(outcome, Launched):
            return Started((outcome.task_arn,), outcome.provider, tuple(notes))
        if isinstance(outcome, LaunchFailed):
            return Refused(f"RunTask failed: {outcome.reason}")
        notes.append(f"no capacity on {outcome.reason}")
        log.warning("no capacity, falling back", extra={"job_id": plan.job_id, "reason": outcome.reason})
    return Waiting("waiting: " + "; ".join(notes))


def start_gang(ecs: EcsPort, plan: LaunchPlan, *, nodes: int, jobs_table: str, claim: str) -> LaunchOutcome:
    """Start ranks 0..nodes-1 on the first provider that takes all of them."""
    notes: list[str] = []
    for provider in plan.providers:
        started: list[str] = []
        for rank in range(nodes):
            try:
                master = started[0] if started else None
                request = rank_request(
                    plan, provider, rank=rank, nodes=nodes, jobs_table=jobs_table, claim=claim, master_task=master
                )
                response = ecs.run_task(request)
            except OverridesTooLarge as exc:
                return Refused(f"invalid job spec: environment: {exc}")
            except Throttled as exc:
                stop_tasks(ecs, started, "gang launch throttled")
                return Waiting(f"waiting: RunTask on {provider} throttled after retries ({exc})")
            except TransientAwsError as exc:
                stop_tasks(ecs, started, "gang launch failed")
                return Unknown(f"waiting: RunTask on {provider} failed for rank {rank} ({exc}); outcome unknown")
            except RequestRejected as exc:
                stop_tasks(ecs, started, "gang launch rejected")
                return Refused(f"RunTask rejected the launch: {exc}")
            outcome = read_run_task(response, provider)
            if isinstance(outcome, Launched):
                started.append(outcome.task_arn)
                continue
            stop_tasks(ecs, started, f"rank {rank} of {nodes} could not start on {provider}")
            if isinstance(outcome, LaunchFailed):
                return Refused(f"RunTask failed for rank {rank}: {outcome.reason}")
            notes.append(f"no capacity for rank {rank} of {nodes} on {outcome.reason}")
            log.warning("gang does not fit, falling back", extra={"job_id": plan.job_id, "reason": notes[-1]})
            break
        else:
            return Started(tuple(started), provider, tuple(notes))
    return Waiting("waiting: " + "; ".join(notes))


def stop_tasks(ecs: EcsPort, task_arns: list[str], reason: str) -> None:
    """Best effort: a rank that cannot be stopped now is found by the task-events reconcile pass."""
    for arn in task_arns:
        with contextlib.suppress(Throttled, TransientAwsError, RequestRejected):
            ecs.stop_task(arn, reason)


def stop_started_by(ecs: EcsPort, job_id: str, reason: str) -> int:
    """Stop every live task of a job (a takeover: whatever a lost launch left behind). Returns how many."""
    arns = ecs.list_started_by(job_id)
    stop_tasks(ecs, arns, reason)
    return len(arns)
