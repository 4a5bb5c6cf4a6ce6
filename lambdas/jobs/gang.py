"""Distributed jobs ("gangs"): the contract between the submitter, the task-events handler and the rank's
rendezvous wrapper (pure constants and helpers).

A job with ``nodes: N > 1`` runs each attempt as N ECS tasks, ranks 0..N-1, all on one capacity provider. Every
rank task has ``startedBy`` = the job id, the group ``gang:<job_id>`` and the tags ``job-id``, ``attempt``, ``rank``.
The job record lists the current attempt's tasks in ``gang_tasks`` (index = rank; ``task_arn`` is rank 0's).
Rank 0 publishes its private address in the record's ``rendezvous`` attribute; the other ranks wait for it.

Which rank 0 may publish: the submitter removes ``rendezvous`` when it takes the launch claim (before any
RunTask), and rank 0 writes only while the record is at its attempt and either still holds the launch claim it
was started under (``TRAIN_LAUNCH_CLAIM``) or names it as ``task_arn`` (after the launch is recorded). A rank 0
of a launch that was taken over therefore cannot overwrite the address. Ranks > 0 are started after rank 0 and
know its task ARN (``TRAIN_MASTER_TASK``): they accept only the address that task published.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts import RENDEZVOUS_ATTRIBUTE

GROUP_PREFIX = "gang:"
GANG_TASKS = "gang_tasks"
RENDEZVOUS = RENDEZVOUS_ATTRIBUTE
"""Record attribute: {"attempt": N, "addr": "10.0.1.23", "port": 29400, "task": rank 0's task ARN} written by
rank 0 of attempt N."""
LAUNCH_CLAIM_ENV = "TRAIN_LAUNCH_CLAIM"
"""Rank 0: the launch claim its RunTask was made under (the publish condition while the launch is not recorded)."""
MASTER_TASK_ENV = "TRAIN_MASTER_TASK"
"""Ranks > 0: rank 0's task ARN of the same launch (the only rendezvous they accept)."""

MASTER_PORTS = range(29400, 29500)
"""Rank 0 takes a free one at random (on AWS every task has its own address; locally gangs share 127.0.0.1)."""

RENDEZVOUS_COMMAND = ("python", "-m", "worker.rendezvous", "--")
"""Prefix of a rank's command: resolves MASTER_ADDR / MASTER_PORT, then execs the job's command."""


def group(job_id: str) -> str:
    return GROUP_PREFIX + job_id


def is_gang_task(task: Mapping[str, Any]) -> bool:
    """True for an ECS task (event detail or DescribeTasks item) launched as a rank of a gang."""
    return str(task.get("group") or "").startswith(GROUP_PREFIX)


def rank_environment(
    *, rank: int, nodes: int, jobs_table: str, claim: str, master_task: str | None = None
) -> dict[str, str]:
    """What every rank gets at launch; MASTER_ADDR and MASTER_PORT are added by the rendezvous wrapper.
    One process per task, so LOCAL_RANK is 0 (a launcher inside the task may start more). Rank 0 gets the
    launch claim, the others rank 0's task ARN (`master_task`, required for them)."""
    environment = {
        "WORLD_SIZE": str(nodes),
        "RANK": str(rank),
        "LOCAL_RANK": "0",
        "TRAIN_JOBS_TABLE": jobs_table,
    }
    if rank == 0:
        environment[LAUNCH_CLAIM_ENV] = claim
    elif master_task:
        environment[MASTER_TASK_ENV] = master_task
    else:
        raise ValueError(f"rank {rank} needs rank 0's task ARN")
    return environment


def gang_tasks(extra: Mapping[str, Any]) -> tuple[str, ...]:
    """The current attempt's rank task ARNs from a job record's extra attributes (empty for a single task)."""
    tasks = extra.get(GANG_TASKS) or ()
    return tuple(str(arn) for arn in tasks)
