"""A rank's entrypoint in a distributed job: ``python -m worker.rendezvous [--timeout S] -- COMMAND ...``.

The submitter puts it in front of the job's command for every rank. Rank 0 reads its private address from the
task metadata endpoint (``$ECS_CONTAINER_METADATA_URI_V4/task``), picks a free port at random
from ``jobs.gang.MASTER_PORTS`` and publishes ``{"attempt", "addr", "port", "task"}`` in the job record, only while
the record is at its attempt and still holds its launch claim or names it as the job's task (so a rank 0 of a
launch that was taken over cannot overwrite it). The other ranks poll the record until the rank 0 they were
launched with (``TRAIN_MASTER_TASK``) has published, for at most ``--timeout`` seconds. Then
``MASTER_ADDR`` and ``MASTER_PORT`` are set and COMMAND replaces this process, so it gets SIGTERM directly.

Exit codes: 2 bad usage or environment, 3 no rendezvous (timeout, or the attempt is over).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from jobs.gang import LAUNCH_CLAIM_ENV, MASTER_PORTS, MASTER_TASK_ENV, RENDEZVOUS

EXIT_USAGE = 2
EXIT_NO_RENDEZVOUS = 3
POLL_SECONDS = 1.0


class RendezvousError(Exception):
    """No rendezvous for this rank (exit 3)."""


def task_identity(metadata_uri: str, *, attempts: int = 10) -> tuple[str, str]:
    """The task's ARN and first private IPv4 address, from the task metadata endpoint v4."""
    error: Exception | None = None
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(metadata_uri.rstrip("/") + "/task", timeout=2) as response:
                task = json.load(response)
            return str(task["TaskARN"]), str(task["Containers"][0]["Networks"][0]["IPv4Addresses"][0])
        except (OSError, ValueError, KeyError, IndexError) as exc:
            error = exc
            time.sleep(0.5)
    raise RendezvousError(f"no private address from the task metadata endpoint {metadata_uri}/task: {error!r}")


def free_port(host: str) -> int:
    """A port of MASTER_PORTS nothing listens on, tried in random order (gangs starting at once locally)."""
    for port in random.sample(MASTER_PORTS, len(MASTER_PORTS)):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise RendezvousError(f"no free port in {MASTER_PORTS.start}..{MASTER_PORTS.stop - 1} on {host}")


def publish(
    ddb: Any, table: str, job_id: str, attempt: int, addr: str, port: int, *, claim: str, task_arn: str
) -> None:
    """Rank 0: write the rendezvous into the job record, only while the job is still at this attempt and this
    task's launch is the job's: the record still holds the launch claim it was started under (not recorded
    yet) or names this task as the job's task (recorded). Last write does not win for a stale rank 0."""
    rendezvous = {
        "attempt": {"N": str(attempt)},
        "addr": {"S": addr},
        "port": {"N": str(port)},
        "task": {"S": task_arn},
    }
    try:
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": job_id}},
            UpdateExpression="SET #r = :r",
            ConditionExpression="#a = :attempt AND (#c = :claim OR #t = :task)",
            ExpressionAttributeNames={"#r": RENDEZVOUS, "#a": "attempt", "#c": "launch_claim", "#t": "task_arn"},
            ExpressionAttributeValues={
                ":r": {"M": rendezvous},
                ":attempt": {"N": str(attempt)},
                ":claim": {"S": claim},
                ":task": {"S": task_arn},
            },
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        raise RendezvousError(
            f"job {job_id} is no longer at attempt {attempt} launched with this task ({task_arn}): "
            "a newer launch took over"
        ) from None


def wait_for_master(
    ddb: Any,
    table: str,
    job_id: str,
    attempt: int,
    *,
    master_task: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, int]:
    """Ranks > 0: (addr, port) once rank 0 of this attempt and launch (`master_task`) has published them."""
    deadline = clock() + timeout
    while True:
        item = ddb.get_item(
            TableName=table,
            Key={"pk": {"S": job_id}},
            ConsistentRead=True,
            ProjectionExpression="#r, #a",
            ExpressionAttributeNames={"#r": RENDEZVOUS, "#a": "attempt"},
        ).get("Item", {})
        current = int(item.get("attempt", {}).get("N", attempt))
        if current != attempt:
            raise RendezvousError(f"job {job_id} moved to attempt {current} while rank waited at attempt {attempt}")
        found = item.get(RENDEZVOUS, {}).get("M", {})
        if found and int(found["attempt"]["N"]) == attempt and found.get("task", {}).get("S") == master_task:
            return found["addr"]["S"], int(found["port"]["N"])
        if clock() >= deadline:
            raise RendezvousError(
                f"rank 0 of job {job_id} attempt {attempt} did not publish its address within {timeout:.0f} s "
                "(is rank 0 running? see its log)"
            )
        sleep(POLL_SECONDS)


def resolve(environ: Mapping[str, str], ddb: Any, *, timeout: float) -> dict[str, str]:
    """MASTER_ADDR and MASTER_PORT for this rank (publishing them first on rank 0)."""
    try:
        rank, job_id, attempt = int(environ["RANK"]), environ["TRAIN_JOB_ID"], int(environ["TRAIN_ATTEMPT"])
        table = environ["TRAIN_JOBS_TABLE"]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"missing or invalid rank environment: {exc}") from None
    if rank == 0:
        metadata = environ.get("ECS_CONTAINER_METADATA_URI_V4")
        if not metadata:
            raise ValueError("ECS_CONTAINER_METADATA_URI_V4 is not set (not running as an ECS task?)")
        claim = environ.get(LAUNCH_CLAIM_ENV)
        if not claim:
            raise ValueError(f"{LAUNCH_CLAIM_ENV} is not set (rank 0 is started by the submitter with it)")
        task_arn, addr = task_identity(metadata)
        port = free_port(addr)
        publish(ddb, table, job_id, attempt, addr, port, claim=claim, task_arn=task_arn)
    else:
        master_task = environ.get(MASTER_TASK_ENV)
        if not master_task:
            raise ValueError(f"{MASTER_TASK_ENV} is not set (ranks > 0 are started by the submitter with it)")
        addr, port = wait_for_master(ddb, table, job_id, attempt, master_task=master_task, timeout=timeout)
    return {"MASTER_ADDR": addr, "MASTER_PORT": str(port)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="worker.rendezvous", description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=600.0, help="how long ranks > 0 wait for rank 0 (s)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the rank's command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("rendezvous: error: no command after --", file=sys.stderr)
        return EXIT_USAGE
    import boto3  # lazily: --help and usage errors need no AWS SDK

    try:
        master = resolve(os.environ, boto3.client("dynamodb"), timeout=args.timeout)
    except ValueError as exc:
        print(f"rendezvous: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RendezvousError as exc:
        print(f"rendezvous: error: {exc}", file=sys.stderr)
        return EXIT_NO_RENDEZVOUS
    print(f"rendezvous: rank {os.environ['RANK']} of {os.environ.get('WORLD_SIZE')}: master {master}", flush=True)
    if command[0] in ("python", "python3"):
        command = [sys.executable, *command[1:]]  # the interpreter (and environment) this wrapper runs in
    os.execvpe(command[0], command, {**os.environ, **master})
    return 0  # pragma: no cover - exec does not return


if __name__ == "__main__":
    sys.exit(main())
