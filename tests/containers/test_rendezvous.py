"""The rank wrapper of distributed jobs (worker.rendezvous): rank 0 publishes its address in the job record,
the other ranks wait for it, with a bounded wait and clear errors. moto in-process."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from jobs.gang import MASTER_PORTS
from tests.containers.helpers import PYTHON, REGION, create_jobs_table, subprocess_env
from worker import rendezvous


@pytest.fixture
def ddb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    create_jobs_table(client)
    launching = {"pk": {"S": "g1"}, "state": {"S": "RETRYING"}, "attempt": {"N": "2"}, "launch_claim": {"S": "c2"}}
    client.put_item(TableName="jobs", Item=launching)
    return client


@pytest.fixture
def metadata() -> Iterator[str]:
    """The task metadata endpoint v4 (the shape ECS documents): this task's private address."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_GET(self) -> None:
            network = {"NetworkMode": "awsvpc", "IPv4Addresses": ["127.0.0.1"]}
            body = json.dumps({"TaskARN": "arn:task/1", "Containers": [{"Networks": [network]}]}).encode()
            self.send_response(200 if self.path == "/v4/t1/task" else 404)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v4/t1"
    server.shutdown()


MASTER_TASK = "arn:task/1"
"""Rank 0's task ARN, as the metadata endpoint above reports it."""


def env(rank: int, **extra: str) -> dict[str, str]:
    launch = {"TRAIN_LAUNCH_CLAIM": "c2"} if rank == 0 else {"TRAIN_MASTER_TASK": MASTER_TASK}
    return {
        **launch,
        "RANK": str(rank),
        "WORLD_SIZE": "2",
        "TRAIN_JOB_ID": "g1",
        "TRAIN_ATTEMPT": "2",
        "TRAIN_JOBS_TABLE": "jobs",
        **extra,
    }


def test_rank_0_publishes_and_the_others_find_it(ddb: Any, metadata: str) -> None:
    master = rendezvous.resolve(env(0, ECS_CONTAINER_METADATA_URI_V4=metadata), ddb, timeout=5)
    assert master["MASTER_ADDR"] == "127.0.0.1" and int(master["MASTER_PORT"]) in MASTER_PORTS
    item = ddb.get_item(TableName="jobs", Key={"pk": {"S": "g1"}})["Item"]
    assert item["rendezvous"]["M"]["attempt"] == {"N": "2"} and item["rendezvous"]["M"]["task"] == {"S": MASTER_TASK}
    assert rendezvous.resolve(env(1), ddb, timeout=5) == master


def record(ddb: Any, **attributes: str | None) -> None:
    sets = {k: v for k, v in attributes.items() if v is not None}
    removes = [f"#{k}" for k, v in attributes.items() if v is None]
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    ddb.update_item(
        TableName="jobs",
        Key={"pk": {"S": "g1"}},
        UpdateExpression=expression,
        ExpressionAttributeNames={f"#{k}": k for k in attributes},
        ExpressionAttributeValues={f":{k}": {"S": v} for k, v in sets.items()},
    )


def test_only_rank_0_of_the_jobs_current_launch_may_publish(ddb: Any) -> None:
    """After a takeover relaunches attempt 2 (claim c2), rank 0 of the lost launch (claim c1) is still running
    for a moment: whatever it publishes, before or after the new launch is recorded, is refused."""
    with pytest.raises(rendezvous.RendezvousError, match="a newer launch took over"):
        rendezvous.publish(ddb, "jobs", "g1", 2, "10.0.0.1", 29400, claim="c1", task_arn="arn:task/stale")
    rendezvous.publish(ddb, "jobs", "g1", 2, "10.0.0.2", 29401, claim="c2", task_arn="arn:task/new")
    record(ddb, state="DISPATCHED", task_arn="arn:task/new", launch_claim=None)  # the launch is recorded
    with pytest.raises(rendezvous.RendezvousError, match="a newer launch took over"):
        rendezvous.publish(ddb, "jobs", "g1", 2, "10.0.0.1", 29400, claim="c1", task_arn="arn:task/stale")
    assert rendezvous.wait_for_master(ddb, "jobs", "g1", 2, master_task="arn:task/new", timeout=5) == (
        "10.0.0.2",
        29401,
    )
    rendezvous.publish(ddb, "jobs", "g1", 2, "10.0.0.2", 29402, claim="c2", task_arn="arn:task/new")  # still its own


def test_a_rank_ignores_an_address_published_by_another_rank_0(ddb: Any) -> None:
    """A rank 0 of the same attempt that is not this launch's (stopped by a takeover or a Spot fallback)."""
    other = {"M": {"attempt": {"N": "2"}, "addr": {"S": "10.0.0.9"}, "port": {"N": "29400"}, "task": {"S": "arn:x"}}}
    ddb.update_item(
        TableName="jobs",
        Key={"pk": {"S": "g1"}},
        UpdateExpression="SET rendezvous = :r",
        ExpressionAttributeValues={":r": other},
    )
    ticks = iter(range(100))
    with pytest.raises(rendezvous.RendezvousError, match="did not publish its address within 30 s"):
        rendezvous.wait_for_master(
            ddb,
            "jobs",
            "g1",
            2,
            master_task=MASTER_TASK,
            timeout=30,
            clock=lambda: next(ticks) * 10.0,
            sleep=lambda _: None,
        )


def test_a_rank_waits_for_rank_0_of_its_own_attempt_only(ddb: Any) -> None:
    stale = {"M": {"attempt": {"N": "1"}, "addr": {"S": "10.0.0.9"}, "port": {"N": "29400"}}}
    ddb.update_item(
        TableName="jobs",
        Key={"pk": {"S": "g1"}},
        UpdateExpression="SET rendezvous = :r",
        ExpressionAttributeValues={":r": stale},
    )
    ticks = iter(range(100))
    with pytest.raises(
        rendezvous.RendezvousError, match=r"rank 0 of job g1 attempt 2 did not publish its address within 30 s"
    ):
        rendezvous.wait_for_master(
            ddb,
            "jobs",
            "g1",
            2,
            master_task=MASTER_TASK,
            timeout=30,
            clock=lambda: next(ticks) * 10.0,
            sleep=lambda _: None,
        )


def test_a_rank_of_a_finished_attempt_gives_up(ddb: Any, metadata: str) -> None:
    with pytest.raises(rendezvous.RendezvousError, match="moved to attempt 2 while rank waited at attempt 1"):
        rendezvous.wait_for_master(ddb, "jobs", "g1", 1, master_task=MASTER_TASK, timeout=5)
    with pytest.raises(rendezvous.RendezvousError, match="no longer at attempt 3"):
        rendezvous.resolve(env(0, TRAIN_ATTEMPT="3", ECS_CONTAINER_METADATA_URI_V4=metadata), ddb, timeout=5)


def test_usage_errors_name_the_problem() -> None:
    import subprocess

    missing = subprocess.run(
        [PYTHON, "-m", "worker.rendezvous", "--", "true"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == rendezvous.EXIT_USAGE and "missing or invalid rank environment" in missing.stderr
    no_command = subprocess.run(
        [PYTHON, "-m", "worker.rendezvous", "--"], env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert no_command.returncode == rendezvous.EXIT_USAGE and "no command after --" in no_command.stderr
