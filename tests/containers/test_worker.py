"""The reference worker against moto (in-process): runs, retries, interruption and resume, protection,
rejection, duplicates, cancellation, configuration."""

from __future__ import annotations

import io
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from aws.job_store import DynamoJobStore
from jobs.record import JobRecord
from jobs.states import JobState
from jobs.timeutil import utcnow
from lifecycle.worker_jobs import Outcome, Result
from tests.containers.helpers import (
    BUCKET,
    PYTHON,
    REGION,
    REPO,
    AgentStandIn,
    create_jobs_table,
    subprocess_env,
    wait_until,
)
from worker.protection import ProtectionClient, ProtectionKeeper
from worker.service import Worker, process_environment, task_arn_from_metadata
from worker.settings import SettingsError, WorkerSettings


@dataclass
class World:
    sqs: Any
    ddb: Any
    queue_url: str
    dlq_url: str
    store: DynamoJobStore
    tmp: Path

    def send(self, body: Any, **attributes: dict[str, str]) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return str(
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=text, MessageAttributes=attributes)["MessageId"]
        )

    def settings(self, **overrides: Any) -> WorkerSettings:
        base = WorkerSettings(
            queue_url=self.queue_url,
            table_name="jobs",
            artifacts_bucket=BUCKET,
            dlq_url=self.dlq_url,
            wait_seconds=0,
            visibility_seconds=30,
            heartbeat_seconds=10,
            grace_seconds=5,
            retry_delay_seconds=0,
            exit_when_idle=True,
            job_dir=str(self.tmp),
        )
        return replace(base, **overrides)

    def worker(self, *, agent: str | None = None, clock: Callable[[], datetime] = utcnow, **overrides: Any) -> Worker:
        settings = self.settings(**overrides)
        return Worker(
            settings,
            sqs=self.sqs,
            store=self.store,
            protection=ProtectionKeeper(ProtectionClient(agent), minutes=settings.protection_minutes),
            base_env=subprocess_env(WORKER_QUEUE_URL="must-not-leak"),
            sink=io.BytesIO(),
            clock=clock,
        )

    def counts(self, url: str | None = None) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def job(self, job_id: str) -> JobRecord:
        record = self.store.get(job_id)
        assert record is not None, f"no record for {job_id}"
        return record


@pytest.fixture
def world(aws: None, tmp_path: Path) -> Iterator[World]:
    sqs = boto3.client("sqs", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    queue_url = sqs.create_queue(QueueName="worker")["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName="worker-dlq")["QueueUrl"]
    create_jobs_table(ddb)
    yield World(sqs, ddb, queue_url, dlq_url, DynamoJobStore(ddb, "jobs"), tmp_path)


def output(worker: Worker) -> str:
    assert isinstance(worker.sink, io.BytesIO)
    return worker.sink.getvalue().decode()


def py(code: str) -> list[str]:
    return [PYTHON, "-c", code]


def spec(job_id: str | None, code: str, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"command": py(code), **fields}
    if job_id:
        document["job_id"] = job_id
    return document


def in_background(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


# --- running -----------------------------------------------------------------------------------------------------


def test_job_runs_with_its_environment_and_message_is_deleted(world: World) -> None:
    names = ["TRAIN_JOB_ID", "TRAIN_ATTEMPT", "TRAIN_CHECKPOINT_URI", "TRAIN_ARTIFACTS_URI", "GREETING"]
    code = f"import os; print(*[os.environ[n] for n in {names}], os.environ.get('WORKER_QUEUE_URL'))"
    world.send(spec("job-ok", code, environment={"GREETING": "hi"}))
    worker = world.worker()
    worker.run()

    job = world.job("job-ok")
    assert (job.state, job.attempt, job.exit_code, job.queue) == (JobState.SUCCEEDED, 1, 0, "worker")
    assert [h["to"] for h in job.history] == ["SUBMITTED", "RUNNING", "SUCCEEDED"]
    assert world.counts() == (0, 0)
    expected = f"[job-ok#1] job-ok 1 s3://{BUCKET}/jobs/job-ok/checkpoints/ s3://{BUCKET}/jobs/job-ok/ hi None"
    assert expected in output(worker)


class BrokenSink(io.BytesIO):
    """Job output goes through; the metric line (one whole JSON line, written last) cannot be written."""

    def write(self, data: Any) -> int:
        if bytes(data).startswith(b'{"_aws"'):
            raise OSError("sink closed")
        return super().write(data)


def test_a_metric_line_that_cannot_be_written_leaves_the_message_handled(world: World) -> None:
    world.send(spec("job-sink", "pass"))
    worker = world.worker()
    worker.sink = BrokenSink()
    worker.run()
    assert world.job("job-sink").state == JobState.SUCCEEDED
    assert world.counts() == (0, 0)  # deleted, not left to come back after its visibility timeout


def test_job_without_id_gets_deterministic_id_from_message_id(world: World) -> None:
    message_id = world.send(spec(None, "pass"))
    world.worker().run()
    assert world.job(f"sqs-{message_id}").state == JobState.SUCCEEDED


def test_failing_job_is_retried_up_to_max_attempts(world: World) -> None:
    code = "import os, sys; print('attempt', os.environ['TRAIN_ATTEMPT']); sys.exit(3)"
    world.send(spec("job-bad", code, max_attempts=3))
    worker = world.worker()
    worker.run()

    job = world.job("job-bad")
    assert (job.state, job.attempt, job.failures, job.exit_code) == (JobState.FAILED, 3, 3, 3)
    assert "exit code 3; gave up after 3 failed attempt(s) (max_attempts=3)" in (job.reason or "")
    assert [h["to"] for h in job.history] == [
        "SUBMITTED", "RUNNING", "RETRYING", "RUNNING", "RETRYING", "RUNNING", "FAILED",
    ]  # fmt: skip
    assert [line for line in output(worker).splitlines() if "attempt" in line] == [
        "[job-bad#1] attempt 1", "[job-bad#2] attempt 2", "[job-bad#3] attempt 3",
    ]  # fmt: skip
    assert world.counts() == (0, 0)


def test_failed_attempt_then_success(world: World) -> None:
    code = "import os, sys; sys.exit(0 if os.environ['TRAIN_ATTEMPT'] == '2' else 1)"
    world.send(spec("job-flaky", code))
    world.worker().run()
    job = world.job("job-flaky")
    assert (job.state, job.attempt, job.failures) == (JobState.SUCCEEDED, 2, 1)
    assert "attempt 1 failed with exit code 1; retrying in 0 s (1 of max_attempts=3 failures)" in str(job.history)


def test_retry_waits_with_backoff_visibility(world: World) -> None:
    world.send(spec("job-later", "import sys; sys.exit(1)"))
    world.worker(retry_delay_seconds=60, max_jobs=1).run()
    job = world.job("job-later")
    assert job.state == JobState.RETRYING
    assert "retrying in 60 s" in (job.reason or "")
    assert world.counts() == (0, 1)  # hidden until the delay passes


def test_command_that_cannot_start_fails_without_retry(world: World) -> None:
    world.send({"job_id": "job-missing", "command": ["/no/such/program"]})
    world.worker().run()
    job = world.job("job-missing")
    assert job.state == JobState.FAILED
    assert "cannot start '/no/such/program'" in (job.reason or "")
    assert world.counts() == (0, 0)


def test_timeout_fails_without_retry(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """timeout_seconds is at least 60 in a JobSpec; the supervisor's timeout itself is tested in test_process."""
    monkeypatch.setattr(
        "worker.service.supervise", lambda *_a, **_k: Result(Outcome.TIMED_OUT, -15, "killed by SIGTERM")
    )
    world.send(spec("job-slow", "pass", timeout_seconds=60))
    world.worker().run()
    job = world.job("job-slow")
    assert job.state == JobState.FAILED
    assert job.reason == "timed out after timeout_seconds=60 (killed by SIGTERM); not retried"
    assert world.counts() == (0, 0)


def test_concurrency_runs_jobs_side_by_side(world: World) -> None:
    a, b = world.tmp / "a", world.tmp / "b"
    wait_for = "import pathlib, sys, time\nmine, other = map(pathlib.Path, sys.argv[1:])\nmine.touch()\n"
    wait_for += "for _ in range(3000):\n    if other.exists(): sys.exit(0)\n    time.sleep(0.01)\nsys.exit(1)"
    world.send({"job_id": "job-a", "command": [PYTHON, "-c", wait_for, str(a), str(b)], "max_attempts": 1})
    world.send({"job_id": "job-b", "command": [PYTHON, "-c", wait_for, str(b), str(a)], "max_attempts": 1})
    world.worker(concurrency=2, exit_when_idle=False, max_jobs=2).run()
    assert world.job("job-a").state == world.job("job-b").state == JobState.SUCCEEDED


def test_max_jobs_stops_the_worker(world: World) -> None:
    for n in range(3):
        world.send(spec(f"job-{n}", "pass"))
    world.worker(max_jobs=2).run()
    assert world.counts() == (1, 0)


# --- SIGTERM: checkpoint, requeue, resume --------------------------------------------------------------------------

CHECKPOINTING_JOB = """
import os, pathlib, signal, sys, time
state = pathlib.Path(os.environ['STATE_DIR'])
ckpt = state / 'checkpoint'
origin = ckpt.read_text() if ckpt.exists() else 'scratch'
print('attempt', os.environ['TRAIN_ATTEMPT'], 'resumes from', origin, flush=True)
if ckpt.exists():
    sys.exit(0)
def stop(*_):
    ckpt.write_text('step-42')
    print('checkpointed', flush=True)
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
(state / 'started').touch()
while True:
    time.sleep(0.05)
"""


def test_sigterm_requeues_at_once_and_next_worker_resumes(world: World) -> None:
    world.send(spec("job-spot", CHECKPOINTING_JOB, environment={"STATE_DIR": str(world.tmp)}))
    first = world.worker(exit_when_idle=False)
    thread = in_background(first)
    wait_until((world.tmp / "started").exists, what="job start")
    first.request_stop("received SIGTERM")
    thread.join(timeout=60)
    assert not thread.is_alive()

    job = world.job("job-spot")
    assert (job.state, job.attempt, job.interruptions) == (JobState.RETRYING, 1, 1)
    assert "interrupted: worker received SIGTERM" in (job.reason or "")
    assert "exit code 143" in (job.reason or "")
    assert "[job-spot#1] checkpointed" in output(first)
    assert world.counts() == (1, 0)  # visible again at once

    second = world.worker()
    second.run()
    job = world.job("job-spot")
    assert (job.state, job.attempt, job.interruptions, job.failures) == (JobState.SUCCEEDED, 2, 1, 0)
    assert "[job-spot#2] attempt 2 resumes from step-42" in output(second)
    assert world.counts() == (0, 0)


def test_too_many_interruptions_fail_the_job(world: World) -> None:
    world.store.create_if_absent(
        "job-unlucky", state=JobState.SUBMITTED, attempt=1, now=utcnow(), queue="worker", interruptions=5
    )
    world.send(spec("job-unlucky", CHECKPOINTING_JOB, environment={"STATE_DIR": str(world.tmp)}))
    worker = world.worker(exit_when_idle=False)
    thread = in_background(worker)
    wait_until((world.tmp / "started").exists, what="job start")
    worker.request_stop("received SIGTERM")
    thread.join(timeout=60)
    job = world.job("job-unlucky")
    assert (job.state, job.interruptions) == (JobState.FAILED, 6)
    assert "gave up after 5 interruptions" in (job.reason or "")
    assert world.counts() == (0, 0)


def test_job_ignoring_sigterm_is_killed_after_grace_and_requeued(world: World) -> None:
    code = "import os, pathlib, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "pathlib.Path(os.environ['STATE_DIR'], 'started').touch()\nwhile True: time.sleep(0.05)"
    world.send(spec("job-stubborn", code, environment={"STATE_DIR": str(world.tmp)}))
    worker = world.worker(exit_when_idle=False, grace_seconds=1)
    thread = in_background(worker)
    wait_until((world.tmp / "started").exists, what="job start")
    worker.request_stop("received SIGTERM")
    thread.join(timeout=60)
    job = world.job("job-stubborn")
    assert job.state == JobState.RETRYING
    assert "killed by SIGKILL after the 1 s grace" in (job.reason or "")
    assert world.counts() == (1, 0)


def test_message_received_while_stopping_goes_back_at_once(world: World) -> None:
    world.send(spec("job-late", "pass"))
    worker = world.worker(exit_when_idle=False)
    real_receive = world.sqs.receive_message

    class StopsDuringPoll:
        def __getattr__(self, name: str) -> Any:
            return getattr(world.sqs, name)

        def receive_message(self, **kwargs: Any) -> Any:
            answer = real_receive(**kwargs)
            worker.request_stop("received SIGTERM")
            return answer

    worker.sqs = StopsDuringPoll()
    worker.run()
    assert world.job is not None and world.store.get("job-late") is None  # never started
    assert world.counts() == (1, 0)


def test_receive_errors_are_retried_not_fatal(world: World) -> None:
    worker = world.worker(exit_when_idle=False)

    class Broken:
        calls = 0

        def receive_message(self, **_kwargs: Any) -> Any:
            Broken.calls += 1
            if Broken.calls == 2:
                worker.request_stop("received SIGTERM")
            raise RuntimeError("network down")

    worker.sqs = Broken()
    worker.error_backoff_s = 0
    thread = in_background(worker)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert Broken.calls == 2


# --- heartbeat, lease, cancel ----------------------------------------------------------------------------------------


class Spy:
    """Wraps the SQS client and records ChangeMessageVisibility calls."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.visibility: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sqs, name)

    def change_message_visibility(self, **kwargs: Any) -> Any:
        self.visibility.append(kwargs["VisibilityTimeout"])
        return self.sqs.change_message_visibility(**kwargs)


WAIT_FOR_RELEASE = (
    "import os, pathlib, time\nstate = pathlib.Path(os.environ['STATE_DIR'])\n(state / 'started').touch()\n"
    "while not (state / 'release').exists(): time.sleep(0.02)"
)


def test_heartbeat_extends_visibility_and_renews_lease(world: World) -> None:
    world.send(spec("job-beat", WAIT_FOR_RELEASE, environment={"STATE_DIR": str(world.tmp)}))
    worker = world.worker(heartbeat_seconds=1)
    spy = Spy(world.sqs)
    worker.sqs = spy
    thread = in_background(worker)
    wait_until((world.tmp / "started").exists, what="job start")
    started = world.job("job-beat").updated_at
    wait_until(lambda: 30 in spy.visibility, what="a heartbeat")
    wait_until(lambda: world.job("job-beat").updated_at != started, what="lease renewal")
    assert world.job("job-beat").state == JobState.RUNNING
    (world.tmp / "release").touch()
    thread.join(timeout=60)
    assert world.job("job-beat").state == JobState.SUCCEEDED


def test_cancel_request_stops_running_job(world: World) -> None:
    world.send(spec("job-cancel", WAIT_FOR_RELEASE, environment={"STATE_DIR": str(world.tmp)}))
    worker = world.worker(heartbeat_seconds=1)
    thread = in_background(worker)
    wait_until((world.tmp / "started").exists, what="job start")
    world.store.request_cancel("job-cancel", now=utcnow())
    thread.join(timeout=60)
    job = world.job("job-cancel")
    assert job.state == JobState.CANCELLED
    assert "cancelled on request" in (job.reason or "")
    assert world.counts() == (0, 0)


def test_job_cancelled_while_waiting_never_runs(world: World) -> None:
    world.store.create_if_absent("job-x", state=JobState.SUBMITTED, attempt=1, now=utcnow(), queue="worker")
    world.store.request_cancel("job-x", now=utcnow())
    world.send(spec("job-x", "raise SystemExit('must not run')"))
    worker = world.worker()
    worker.run()
    assert world.job("job-x").state == JobState.CANCELLED
    assert "must not run" not in output(worker)
    assert world.counts() == (0, 0)


def test_job_taken_over_elsewhere_is_abandoned_untouched(world: World) -> None:
    world.send(spec("job-lost", WAIT_FOR_RELEASE, environment={"STATE_DIR": str(world.tmp)}))
    worker = world.worker(heartbeat_seconds=1)
    thread = in_background(worker)
    wait_until((world.tmp / "started").exists, what="job start")
    world.store.transition(  # what another worker does when it believes this one is dead
        "job-lost", JobState.RETRYING, expected_states=JobState.RUNNING, expected_attempt=1, now=utcnow(), reason="x"
    )
    thread.join(timeout=60)
    job = world.job("job-lost")
    assert (job.state, job.reason) == (JobState.RETRYING, "x")
    assert world.counts() == (0, 1)  # the message was neither deleted nor returned by the abandoning worker


def test_duplicate_of_finished_job_is_deleted_without_running(world: World) -> None:
    world.send(spec("job-dup", "print('first run')"))
    world.worker().run()
    world.send(spec("job-dup", "print('second run')"))
    worker = world.worker()
    worker.run()
    assert "second run" not in output(worker)
    assert world.job("job-dup").state == JobState.SUCCEEDED
    assert world.counts() == (0, 0)


def test_duplicate_of_running_job_is_left_alone(world: World) -> None:
    now = utcnow()
    world.store.create_if_absent("job-busy", state=JobState.SUBMITTED, attempt=1, now=now, queue="worker")
    world.store.transition(
        "job-busy", JobState.RUNNING, expected_states=JobState.SUBMITTED, expected_attempt=1, now=now
    )
    world.send(spec("job-busy", "raise SystemExit('must not run')"))
    worker = world.worker()
    worker.run()
    assert world.job("job-busy").state == JobState.RUNNING
    assert "must not run" not in output(worker)
    assert world.counts() == (0, 1)  # hidden for a visibility period, then checked again


def test_running_job_with_stale_lease_is_taken_over(world: World) -> None:
    then = utcnow() - timedelta(hours=1)
    world.store.create_if_absent("job-orphan", state=JobState.SUBMITTED, attempt=1, now=then, queue="worker")
    world.store.transition(
        "job-orphan", JobState.RUNNING, expected_states=JobState.SUBMITTED, expected_attempt=1, now=then
    )
    world.send(spec("job-orphan", "import os; print('attempt', os.environ['TRAIN_ATTEMPT'])"))
    worker = world.worker()
    worker.run()
    job = world.job("job-orphan")
    assert (job.state, job.attempt, job.interruptions) == (JobState.SUCCEEDED, 2, 1)
    assert "worker lost: no heartbeat since" in str(job.history)
    assert "[job-orphan#2] attempt 2" in output(worker)


def test_stale_job_with_too_many_interruptions_fails(world: World) -> None:
    then = utcnow() - timedelta(hours=1)
    world.store.create_if_absent(
        "job-doomed", state=JobState.SUBMITTED, attempt=1, now=then, queue="worker", interruptions=5
    )
    world.store.transition(
        "job-doomed", JobState.RUNNING, expected_states=JobState.SUBMITTED, expected_attempt=1, now=then
    )
    world.send(spec("job-doomed", "raise SystemExit('must not run')"))
    worker = world.worker()
    worker.run()
    job = world.job("job-doomed")
    assert job.state == JobState.FAILED
    assert "worker lost: no heartbeat since" in (job.reason or "")
    assert "must not run" not in output(worker)
    assert world.counts() == (0, 0)


# --- rejection -------------------------------------------------------------------------------------------------------


def dlq_messages(world: World) -> list[dict[str, Any]]:
    answer = world.sqs.receive_message(QueueUrl=world.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return list(answer.get("Messages", []))


@pytest.mark.parametrize(
    ("body", "attributes", "job_id", "reason"),
    [
        ("{not json", {}, None, "body: malformed JSON"),
        ('{"job_id": "job-typo", "command": ["x"], "comand": 1}', {}, "job-typo", "comand: unknown field 'comand'"),
        ('{"job_id": "job-mem", "command": ["x"], "cpu": 256, "memory": 4096}', {}, "job-mem", "memory: 4096 MiB"),
        ('{"job_id": "job-ded", "command": ["x"], "dedicated": true}', {}, "job-ded", "dedicated: dedicated jobs"),
        (
            '{"job_id": "job-img", "command": ["x"], "image": "gpu", "dedicated": false}',
            {},
            "job-img",
            "image: the worker",
        ),
        (
            '{"job_id": "job-att", "command": ["x"]}',
            {"attempt": {"DataType": "Number", "StringValue": "-1"}},
            "job-att",
            "messageAttributes.attempt",
        ),
    ],
)
def test_malformed_messages_are_rejected_with_reason(
    world: World, body: str, attributes: dict[str, Any], job_id: str | None, reason: str
) -> None:
    message_id = world.send(body, **attributes)
    world.worker().run()
    record = world.job(job_id or f"sqs-{message_id}")
    assert record.state == JobState.REJECTED
    assert reason in (record.reason or "")
    assert world.counts() == (0, 0)
    [dead] = dlq_messages(world)
    assert dead["Body"] == body
    assert reason in dead["MessageAttributes"]["reason"]["StringValue"]
    assert dead["MessageAttributes"]["source_message_id"]["StringValue"] == message_id


def test_rejection_without_dlq_is_still_recorded(world: World) -> None:
    message_id = world.send("[]")
    world.worker(dlq_url=None).run()
    assert world.job(f"sqs-{message_id}").state == JobState.REJECTED
    assert world.counts() == (0, 0)
    assert dlq_messages(world) == []


def test_bad_message_for_existing_job_leaves_the_job_alone(world: World) -> None:
    world.send(spec("job-keep", "pass"))
    world.worker().run()
    world.send('{"job_id": "job-keep", "command": []}')
    world.worker().run()
    assert world.job("job-keep").state == JobState.SUCCEEDED
    assert len(dlq_messages(world)) == 1


def test_submitted_record_is_rejected_by_worker_rules(world: World) -> None:
    world.store.create_if_absent("job-pre", state=JobState.SUBMITTED, attempt=1, now=utcnow(), queue="worker")
    world.send({"job_id": "job-pre", "command": ["x"], "dedicated": True})
    world.worker().run()
    assert world.job("job-pre").state == JobState.REJECTED


# --- protection ------------------------------------------------------------------------------------------------------

ASK_AGENT = (
    "import os, urllib.request\n"
    "print(urllib.request.urlopen(os.environ['ECS_AGENT_URI'] + '/task-protection/v1/state').read().decode())"
)


def test_task_protected_while_busy_and_released_when_idle(world: World) -> None:
    with AgentStandIn() as agent:
        world.send(spec("job-prot", ASK_AGENT))
        world.send(spec("job-prot2", "pass"))
        worker = world.worker(agent=agent.uri)
        worker.base_env["ECS_AGENT_URI"] = agent.uri
        worker.run()
    assert world.job("job-prot").state == JobState.SUCCEEDED
    assert '"ProtectionEnabled": true' in output(worker)
    on = {"ProtectionEnabled": True, "ExpiresInMinutes": 60}
    off = {"ProtectionEnabled": False}
    assert agent.events == [("PUT", on), ("GET", True), ("PUT", off), ("PUT", on), ("PUT", off)]
    assert agent.protected is False
    assert world.job("job-prot").task_arn == AgentStandIn.TASK_ARN  # learned from the agent's answer


def test_idle_worker_never_asks_for_protection(world: World) -> None:
    with AgentStandIn() as agent:
        world.worker(agent=agent.uri).run()
    assert agent.events == []


def test_protection_is_renewed_while_busy() -> None:
    with AgentStandIn() as agent:
        keeper = ProtectionKeeper(ProtectionClient(agent.uri), minutes=5, renew_every_s=0.05)
        keeper.acquire()
        wait_until(lambda: len(agent.puts()) >= 3, what="renewals")
        keeper.release()
        keeper.close()
    assert all(body == {"ProtectionEnabled": True, "ExpiresInMinutes": 5} for body in agent.puts()[:3])
    assert agent.puts()[-1] == {"ProtectionEnabled": False}


def test_protection_is_reference_counted() -> None:
    with AgentStandIn() as agent:
        keeper = ProtectionKeeper(ProtectionClient(agent.uri), minutes=5)
        keeper.acquire()
        keeper.acquire()
        keeper.release()
        assert agent.protected is True
        keeper.release()
        keeper.close()
    assert [body["ProtectionEnabled"] for body in agent.puts()] == [True, False]


@pytest.mark.parametrize(
    "answer",
    [
        {"failure": {"Arn": "arn", "Reason": "TASK_NOT_VALID", "Detail": None}},
        {"error": {"Code": "AccessDeniedException", "Message": "no ecs:UpdateTaskProtection"}},
    ],
)
def test_protection_refusal_is_logged_and_job_still_runs(
    world: World, answer: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with AgentStandIn(answer=answer) as agent:
        world.send(spec("job-refused", "pass"))
        world.worker(agent=agent.uri).run()
    assert world.job("job-refused").state == JobState.SUCCEEDED
    assert "refused by the ECS agent" in caplog.text


def test_unreachable_agent_is_logged_and_job_still_runs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    world.send(spec("job-noagent", "pass"))
    world.worker(agent="http://127.0.0.1:9").run()
    assert world.job("job-noagent").state == JobState.SUCCEEDED
    assert "task protection on failed" in caplog.text


def test_no_agent_uri_skips_protection(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.INFO)
    client = ProtectionClient(None)
    assert client.put(True, 5) is True
    assert "ECS_AGENT_URI is not set" in caplog.text


def test_task_arn_from_metadata_endpoint() -> None:
    with AgentStandIn() as agent:
        assert task_arn_from_metadata(agent.uri) == AgentStandIn.TASK_ARN
    assert task_arn_from_metadata(None) is None
    assert task_arn_from_metadata("http://127.0.0.1:9") is None


# --- environment and configuration -----------------------------------------------------------------------------------


def test_process_environment_layers() -> None:
    from jobs.jobspec import parse_job_spec

    job = parse_job_spec({"command": ["x"], "environment": {"LR": "0.1"}, "checkpoint_uri": "s3://other-bucket/ckpt/"})
    env = process_environment(
        {"PATH": "/bin", "WORKER_DLQ_URL": "u", "JOBS_TABLE_NAME": "t", "TRAIN_JOB_ID": "stale"},
        job,
        job_id="j",
        attempt=4,
        bucket="b",
    )
    assert env == {
        "PATH": "/bin",
        "LR": "0.1",
        "TRAIN_JOB_ID": "j",
        "TRAIN_ATTEMPT": "4",
        "TRAIN_CHECKPOINT_URI": "s3://other-bucket/ckpt/",
        "TRAIN_ARTIFACTS_URI": "s3://b/jobs/j/",
    }


REQUIRED = {
    "WORKER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
    "JOBS_TABLE_NAME": "t",
    "ARTIFACTS_BUCKET": "b",
}


def test_settings_defaults() -> None:
    settings = WorkerSettings.from_env(REQUIRED)
    assert (settings.concurrency, settings.wait_seconds, settings.grace_seconds) == (1, 20, 90)
    assert (settings.visibility_seconds, settings.heartbeat_seconds, settings.protection_minutes) == (300, 60, 60)
    assert settings.agent_uri is None and settings.dlq_url is None
    assert settings.lease_stale_seconds == 600


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "WORKER_QUEUE_URL: is not set"),
        ({**REQUIRED, "WORKER_QUEUE_URL": "worker"}, "WORKER_QUEUE_URL: must be a queue URL"),
        ({**REQUIRED, "WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY: must be >= 1, got 0"),
        ({**REQUIRED, "WORKER_WAIT_SECONDS": "30"}, "WORKER_WAIT_SECONDS: must be <= 20, got 30"),
        ({**REQUIRED, "WORKER_SHUTDOWN_GRACE_SECONDS": "120"}, "WORKER_SHUTDOWN_GRACE_SECONDS: must be <= 110"),
        ({**REQUIRED, "WORKER_VISIBILITY_SECONDS": "60", "WORKER_HEARTBEAT_SECONDS": "40"}, "at most half"),
        ({**REQUIRED, "WORKER_PROTECTION_MINUTES": "3000"}, "WORKER_PROTECTION_MINUTES: must be <= 2880"),
        ({**REQUIRED, "WORKER_MAX_JOBS": "many"}, "WORKER_MAX_JOBS: must be an integer, got 'many'"),
        ({**REQUIRED, "WORKER_EXIT_WHEN_IDLE": "maybe"}, "WORKER_EXIT_WHEN_IDLE: must be true or false"),
        ({**REQUIRED, "LOG_LEVEL": "loud"}, "LOG_LEVEL: must be DEBUG"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError) as error:
        WorkerSettings.from_env(env)
    assert problem in str(error.value)


def test_missing_settings_are_all_reported() -> None:
    with pytest.raises(SettingsError) as error:
        WorkerSettings.from_env({"WORKER_CONCURRENCY": "x"})
    assert [p.split(":")[0] for p in error.value.problems] == [
        "WORKER_QUEUE_URL", "JOBS_TABLE_NAME", "ARTIFACTS_BUCKET", "WORKER_CONCURRENCY",
    ]  # fmt: skip


def test_worker_process_exits_2_on_bad_configuration() -> None:
    proc = subprocess.run(
        [PYTHON, "-m", "worker"], cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "worker: invalid worker configuration:" in proc.stderr
    assert "WORKER_QUEUE_URL: is not set" in proc.stderr
    assert "Traceback" not in proc.stderr
