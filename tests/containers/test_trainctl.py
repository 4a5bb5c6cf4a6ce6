"""trainctl against moto: submit / status / list / cancel / logs / dlq round trips, validation, exit codes."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from aws.job_store import DynamoJobStore
from jobs.states import JobState
from jobs.timeutil import utcnow
from tests.containers.helpers import BUCKET, PYTHON, REGION, REPO, create_jobs_table, subprocess_env
from trainctl import follow, output
from trainctl.cli import main
from trainctl.errors import TrainctlError
from trainctl.resources import Session
from worker.protection import ProtectionClient, ProtectionKeeper
from worker.service import Worker
from worker.settings import WorkerSettings

STACK = "TrainingAutoscaler"


@dataclass
class Deployment:
    sqs: Any
    logs: Any
    store: DynamoJobStore
    urls: dict[str, str]
    tmp: Path

    def messages(self, key: str) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(
            QueueUrl=self.urls[key], MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
        )
        return list(answer.get("Messages", []))

    def worker(self) -> Worker:
        settings = WorkerSettings(
            queue_url=self.urls["WorkerQueueUrl"],
            table_name="jobs",
            artifacts_bucket=BUCKET,
            dlq_url=self.urls["WorkerDlqUrl"],
            wait_seconds=0,
            visibility_seconds=30,
            heartbeat_seconds=10,
            retry_delay_seconds=0,
            exit_when_idle=True,
            job_dir=str(self.tmp),
        )
        return Worker(
            settings,
            sqs=self.sqs,
            store=self.store,
            protection=ProtectionKeeper(ProtectionClient(None), minutes=5),
            base_env=subprocess_env(),
            sink=io.BytesIO(),
        )


@pytest.fixture
def deployment(aws: None, tmp_path: Path) -> Iterator[Deployment]:
    sqs = boto3.client("sqs", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    urls = {
        output: sqs.create_queue(QueueName=name)["QueueUrl"]
        for output, name in (
            ("WorkerQueueUrl", "worker"),
            ("WorkerDlqUrl", "worker-dlq"),
            ("DispatchQueueUrl", "dispatch"),
            ("DispatchDlqUrl", "dispatch-dlq"),
        )
    }
    create_jobs_table(ddb)
    outputs = {
        **urls,
        "JobsTableName": "jobs",
        "ClusterName": "training",
        "ArtifactsBucketName": BUCKET,
        "TrainingLogGroupName": "training-logs",
        "WorkerLogGroupName": "worker-logs",
    }
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    yield Deployment(sqs, boto3.client("logs", region_name=REGION), DynamoJobStore(ddb, "jobs"), urls, tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- submit -------------------------------------------------------------------------------------------------------


def test_submit_yaml_file_sends_to_worker_queue_and_records_job(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    job_file = deployment.tmp / "job.yaml"
    job_file.write_text("job_id: train-1\ncommand: [python, -m, worker.example_train]\nenvironment:\n  LR: '0.1'\n")
    code, out, err = run(capsys, "submit", str(job_file))
    assert (code, out) == (0, "train-1\n")
    assert "submitted train-1 to the worker queue" in err
    record = deployment.store.get("train-1")
    assert record is not None and (record.state, record.queue, record.attempt) == (JobState.SUBMITTED, "worker", 1)
    [message] = deployment.messages("WorkerQueueUrl")
    body = json.loads(message["Body"])
    assert (body["job_id"], body["command"], body["environment"]) == (
        "train-1",
        ["python", "-m", "worker.example_train"],
        {"LR": "0.1"},
    )


def test_submit_flags_dedicated_job_to_dispatch_queue_with_json(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "submit",
        "--json",
        "--name",
        "sweep a",
        "--command",
        "python train.py --lr '0.1 0.2'",
        "--cpu",
        "512",
        "--memory",
        "2048",
        "--env",
        "A=1",
        "--env",
        "B=x=y",
        "--tag",
        "team=ml",
        "--no-spot",
        "--dedicated",
    )
    assert code == 0
    answer = json.loads(out)
    assert answer["queue"] == "dispatch"
    assert answer["job_id"].startswith("sweep-a-")
    [message] = deployment.messages("DispatchQueueUrl")
    body = json.loads(message["Body"])
    assert body["command"] == ["python", "train.py", "--lr", "0.1 0.2"]
    assert (body["cpu"], body["memory"], body["spot"], body["dedicated"]) == (512, 2048, False, True)
    assert body["environment"] == {"A": "1", "B": "x=y"}
    assert body["tags"] == {"team": "ml"}
    assert deployment.messages("WorkerQueueUrl") == []


def test_flags_override_file_fields_and_several_jobs_submit_together(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    jobs = deployment.tmp / "jobs.json"
    jobs.write_text(json.dumps([{"job_id": "a1", "command": ["x"]}, {"job_id": "a2", "command": ["y"], "priority": 1}]))
    code, out, _ = run(capsys, "submit", str(jobs), "--priority", "9")
    assert (code, out) == (0, "a1\na2\n")
    bodies = sorted((json.loads(m["Body"]) for m in deployment.messages("WorkerQueueUrl")), key=lambda b: b["job_id"])
    assert [b["priority"] for b in bodies] == [9, 9]


def test_validation_prints_every_problem_and_sends_nothing(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    job_file = deployment.tmp / "job.json"
    job_file.write_text(json.dumps({"job_id": "bad one", "command": ["x"], "comand": 1, "cpu": 256, "memory": 8192}))
    code, out, err = run(capsys, "submit", str(job_file), "--env", "AWS_SECRET=1", "--env", "NOEQUALS")
    assert code == 2 and out == ""
    assert err.startswith("trainctl: error: invalid job spec (")
    for field in (
        "job_id:",
        "comand: unknown field 'comand'",
        "environment: 'AWS_SECRET' uses a reserved prefix",
        "environment: 'NOEQUALS' is not KEY=VALUE",
        "memory: 8192 MiB is not valid with cpu 256",
    ):
        assert field in err
    assert "Traceback" not in err
    assert deployment.messages("WorkerQueueUrl") == []
    assert list(deployment.store.query_state(JobState.SUBMITTED)) == []


def test_resource_combination_is_checked(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "submit", "--command", "x", "--cpu", "256", "--memory", "8192")
    assert code == 2
    assert "memory: 8192 MiB is not valid with cpu 256" in err


def test_validation_of_several_jobs_names_each(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = deployment.tmp / "jobs.yaml"
    jobs.write_text("- {job_id: ok1, command: [x]}\n- {job_id: ok1, command: []}\n- {command: [x], gpu: 1}\n")
    code, _, err = run(capsys, "submit", str(jobs))
    assert code == 2
    assert "jobs[1].command" in err and "jobs[2].gpu" in err


def test_reserved_environment_from_flag_is_rejected(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "submit", "--command", "x", "--env", "TRAIN_JOB_ID=1")
    assert code == 2
    assert "environment: 'TRAIN_JOB_ID' uses a reserved prefix" in err


def test_submit_without_command_names_the_field(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "submit", "--cpu", "256")
    assert code == 2
    assert "command: is required" in err


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("job.yaml", "command: [x\n", "job.yaml: not valid YAML"),
        ("job.json", "{", "job.json: not valid JSON"),
        ("job.json", "[1, 2]", "expected a job (a mapping) or a list of jobs"),
    ],
)
def test_unreadable_job_file_exits_2(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], name: str, content: str, message: str
) -> None:
    path = deployment.tmp / name
    path.write_text(content)
    code, _, err = run(capsys, "submit", str(path))
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_missing_job_file_exits_2(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "submit", str(deployment.tmp / "nope.yaml"))
    assert code == 2
    assert "cannot read" in err and "No such file" in err


def test_duplicate_job_id_is_recognised(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "submit", "--job-id", "once", "--command", "x")[0] == 0
    code, _, err = run(capsys, "submit", "--job-id", "once", "--command", "y")
    assert code == 1
    assert "job 'once' already exists (SUBMITTED" in err
    assert len(deployment.messages("WorkerQueueUrl")) == 1


def test_send_failure_marks_the_job_failed(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAINCTL_WORKER_QUEUE_URL", deployment.urls["WorkerQueueUrl"] + "-missing")
    code, _, err = run(capsys, "submit", "--job-id", "lost", "--command", "x")
    assert code == 1
    assert "SendMessage failed" in err
    record = deployment.store.get("lost")
    assert record is not None and record.state == JobState.FAILED
    assert "trainctl could not enqueue it" in (record.reason or "")


def test_submit_wait_follows_job_to_success(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "sleep", lambda _s: deployment.worker().run())
    code, out, err = run(
        capsys, "submit", "--job-id", "w1", "--command", f"{PYTHON} -c pass", "--wait", "--interval", "0"
    )
    assert (code, out) == (0, "w1\n")
    assert [line.split()[-1] for line in err.splitlines()[1:]] == ["SUBMITTED", "RUNNING", "SUCCEEDED"]


def test_submit_wait_reports_failure_with_reason(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "sleep", lambda _s: deployment.worker().run())
    code, out, err = run(
        capsys, "submit", "--json", "--job-id", "w2", "--command", "false", "--max-attempts", "1", "--wait"
    )
    assert code == 1
    assert json.loads(out)["state"] == "FAILED"
    assert "trainctl: job w2 FAILED: exit code 1; gave up after 1 failed attempt(s)" in err


def test_wait_timeout(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter(range(0, 10_000, 100))
    monkeypatch.setattr(follow.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(follow, "sleep", lambda _s: None)
    code, _, err = run(capsys, "submit", "--job-id", "w3", "--command", "x", "--wait", "--wait-timeout", "150")
    assert code == 1
    assert "gave up waiting after 150 s: w3 SUBMITTED" in err


# --- status / list ------------------------------------------------------------------------------------------------


def test_status_plain_and_json(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "submit", "--job-id", "s1", "--command", "python -c 'print(1)'")
    code, out, _ = run(capsys, "status", "s1")
    assert code == 0
    assert "state      SUBMITTED" in out
    assert "command    python -c 'print(1)'" in out
    assert "-> SUBMITTED" in out
    code, out, _ = run(capsys, "--json", "status", "s1")
    record = json.loads(out)
    assert (record["job_id"], record["state"], record["spec"]["command"]) == (
        "s1",
        "SUBMITTED",
        ["python", "-c", "print(1)"],
    )


def test_status_wait_exit_code_follows_the_outcome(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "sleep", lambda _s: deployment.worker().run())
    run(capsys, "submit", "--job-id", "s2", "--command", "false", "--max-attempts", "1")
    code, _, err = run(capsys, "status", "s2", "--wait")
    assert code == 1
    assert "s2  FAILED" in err
    code, _, _ = run(capsys, "status", "s2", "--wait")  # already final: same answer at once
    assert code == 1


def test_status_of_unknown_job_exits_1(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "status", "ghost")
    assert (code, out) == (1, "")
    assert err == "trainctl: error: job 'ghost' not found\n"


def test_list_table_filter_and_json(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    for job_id in ("l1", "l2"):
        run(capsys, "submit", "--job-id", job_id, "--command", "x")
    deployment.store.request_cancel("l2", now=utcnow())
    run(capsys, "cancel", "l2")
    code, out, _ = run(capsys, "list")
    lines = out.splitlines()
    header = ["JOB", "ID", "STATE", "ATTEMPT", "QUEUE", "UPDATED", "(UTC)", "COST", "($)", "REASON"]
    assert code == 0 and lines[0].split() == header
    assert {line.split()[0]: line.split()[1] for line in lines[1:]} == {"l1": "SUBMITTED", "l2": "CANCELLED"}
    code, out, _ = run(capsys, "list", "--state", "cancelled", "--json")
    assert [r["job_id"] for r in json.loads(out)] == ["l2"]


def test_list_rejects_unknown_state(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_exit(capsys, "list", "--state", "DONE")
    assert code == 2
    assert "unknown state 'DONE'" in err


def run_exit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """For argparse errors, which exit instead of returning."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["frobnicate"], ["submit", "--cpu", "lots"], []):
        code, _, err = run_exit(capsys, *argv)
        assert code == 2
        assert err.startswith("trainctl: error:") and len(err.strip().splitlines()) == 1


# --- cancel -------------------------------------------------------------------------------------------------------


def test_cancel_waiting_job_and_worker_drops_its_message(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "submit", "--job-id", "c1", "--command", "false")
    code, out, _ = run(capsys, "cancel", "c1")
    assert (code, out) == (0, "c1: cancelled before it started\n")
    deployment.worker().run()
    record = deployment.store.get("c1")
    assert record is not None and record.state == JobState.CANCELLED
    assert deployment.messages("WorkerQueueUrl") == []


def metric_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The EMF lines trainctl emitted for the jobs it ended (trainctl.output.emit_metric)."""
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "trainctl.metrics"]


def test_cancel_of_a_waiting_job_emits_one_metric_line(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trainctl.metrics")
    run(capsys, "submit", "--job-id", "c0", "--command", "x")
    code, out, _ = run(capsys, "cancel", "c0")
    assert (code, out) == (0, "c0: cancelled before it started\n")
    [line] = metric_lines(caplog)
    assert (line["job_id"], line["State"], line["Queue"]) == ("c0", "CANCELLED", "worker")
    assert "_aws" in line


def test_a_message_that_cannot_be_sent_fails_the_job_with_one_metric_line(
    deployment: Deployment,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="trainctl.metrics")
    monkeypatch.setenv("TRAINCTL_WORKER_QUEUE_URL", deployment.urls["WorkerQueueUrl"] + "-missing")
    run(capsys, "submit", "--job-id", "lost", "--command", "x")
    assert [(m["job_id"], m["State"]) for m in metric_lines(caplog)] == [("lost", "FAILED")]


def test_cancel_finished_or_unknown_job_exits_1(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "submit", "--job-id", "c2", "--command", "x")
    run(capsys, "cancel", "c2")
    code, _, err = run(capsys, "cancel", "c2")
    assert code == 1 and "job c2 is already CANCELLED: nothing to cancel" in err
    code, _, err = run(capsys, "cancel", "nobody")
    assert code == 1 and "job 'nobody' not found" in err


class FakeEcs:
    """The three ECS calls trainctl makes (moto cannot run awsvpc Fargate tasks)."""

    def __init__(self, tasks: dict[str, str] | None = None) -> None:
        self.tasks = tasks or {}
        self.stopped: list[dict[str, Any]] = []

    def stop_task(self, **kwargs: Any) -> dict[str, Any]:
        self.stopped.append(kwargs)
        return {"task": {"taskArn": kwargs["task"]}}

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        found = [{"taskArn": t, "taskDefinitionArn": self.tasks[t]} for t in kwargs["tasks"] if t in self.tasks]
        return {
            "tasks": found,
            "failures": [{"arn": t, "reason": "MISSING"} for t in kwargs["tasks"] if t not in self.tasks],
        }

    def describe_task_definition(self, **kwargs: Any) -> dict[str, Any]:
        options = {"awslogs-group": "training-logs", "awslogs-stream-prefix": "job", "awslogs-region": REGION}
        return {
            "taskDefinition": {
                "containerDefinitions": [
                    {"name": "sidecar"},
                    {"name": "trainer", "logConfiguration": {"logDriver": "awslogs", "options": options}},
                ]
            }
        }


@pytest.fixture
def fake_ecs(monkeypatch: pytest.MonkeyPatch) -> FakeEcs:
    ecs = FakeEcs({TASK: "arn:aws:ecs:us-east-1:123456789012:task-definition/train:1"})
    real = Session.client
    monkeypatch.setattr(Session, "client", lambda self, name: ecs if name == "ecs" else real(self, name))
    return ecs


TASK = "arn:aws:ecs:us-east-1:123456789012:task/training/abc123"


def active_job(deployment: Deployment, job_id: str, queue: str, state: JobState = JobState.RUNNING) -> None:
    store, now = deployment.store, utcnow()
    store.create_if_absent(job_id, state=JobState.SUBMITTED, attempt=1, now=now, queue=queue)
    store.transition(job_id, state, expected_states=JobState.SUBMITTED, expected_attempt=1, now=now, task_arn=TASK)


def test_cancel_running_dispatch_job_stops_its_task(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], fake_ecs: FakeEcs
) -> None:
    active_job(deployment, "c3", "dispatch")
    code, out, _ = run(capsys, "--json", "cancel", "c3")
    assert code == 0
    assert json.loads(out)["state"] == "RUNNING"
    assert fake_ecs.stopped == [{"cluster": "training", "task": TASK, "reason": "cancelled by trainctl (job c3)"}]
    record = deployment.store.get("c3")
    assert record is not None and record.cancel_requested


def test_cancel_running_worker_job_leaves_it_to_the_worker(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], fake_ecs: FakeEcs
) -> None:
    active_job(deployment, "c4", "worker")
    code, out, _ = run(capsys, "cancel", "c4")
    assert code == 0 and "stops it at its next heartbeat" in out
    assert fake_ecs.stopped == []


# --- logs ---------------------------------------------------------------------------------------------------------


def put_logs(deployment: Deployment, group: str, stream: str, lines: list[str]) -> None:
    with contextlib.suppress(deployment.logs.exceptions.ResourceAlreadyExistsException):
        deployment.logs.create_log_group(logGroupName=group)
    deployment.logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    events = [{"timestamp": now + i, "message": line} for i, line in enumerate(lines)]
    deployment.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def test_logs_of_dispatch_job_from_its_task_definition(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], fake_ecs: FakeEcs
) -> None:
    active_job(deployment, "g1", "dispatch")
    put_logs(deployment, "training-logs", "job/trainer/abc123", ["step 1", "step 2"])
    code, out, _ = run(capsys, "logs", "g1")
    assert (code, out) == (0, "step 1\nstep 2\n")


def test_logs_of_worker_job_are_filtered_from_the_worker_stream(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], fake_ecs: FakeEcs
) -> None:
    fake_ecs.tasks.clear()  # a stopped task ECS no longer describes: the stack's log group is used
    active_job(deployment, "g2", "worker")
    put_logs(deployment, "worker-logs", "worker/worker/abc123", ["[g2#1] mine", "[other#1] not mine", "[g2#1] done"])
    code, out, _ = run(capsys, "logs", "g2")
    assert (code, out) == (0, "[g2#1] mine\n[g2#1] done\n")


def test_logs_follow_until_job_finishes(
    deployment: Deployment, capsys: pytest.CaptureFixture[str], fake_ecs: FakeEcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    active_job(deployment, "g3", "dispatch")
    put_logs(deployment, "training-logs", "job/trainer/abc123", ["first"])

    def more(_seconds: float) -> None:
        deployment.logs.put_log_events(
            logGroupName="training-logs",
            logStreamName="job/trainer/abc123",
            logEvents=[{"timestamp": int(time.time() * 1000) + 10, "message": "last"}],
        )
        deployment.store.transition(
            "g3", JobState.SUCCEEDED, expected_states=JobState.RUNNING, expected_attempt=1, now=utcnow()
        )

    monkeypatch.setattr(follow, "sleep", more)
    code, out, _ = run(capsys, "logs", "g3", "--follow")
    assert (code, out) == (0, "first\nlast\n")


def test_logs_errors(deployment: Deployment, capsys: pytest.CaptureFixture[str], fake_ecs: FakeEcs) -> None:
    run(capsys, "submit", "--job-id", "g4", "--command", "x")
    code, _, err = run(capsys, "logs", "g4")
    assert code == 1 and "job g4 has no task yet (SUBMITTED): no logs to show" in err
    active_job(deployment, "g5", "dispatch")
    code, _, err = run(capsys, "logs", "g5")
    assert code == 1 and "no logs yet for job g5" in err


# --- dlq ----------------------------------------------------------------------------------------------------------


def test_dlq_list_shows_reasons_of_rejected_messages(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment.sqs.send_message(QueueUrl=deployment.urls["WorkerQueueUrl"], MessageBody='{"job_id": "r1", "cmd": 1}')
    deployment.worker().run()  # rejects it: DLQ copy with the reason
    deployment.sqs.send_message(QueueUrl=deployment.urls["DispatchDlqUrl"], MessageBody="poison")
    code, out, _ = run(capsys, "dlq", "list")
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["QUEUE", "JOB", "ID"]
    assert rows[1].startswith("worker") and "r1" in rows[1] and "cmd: unknown field 'cmd'" in rows[1]
    assert rows[2].startswith("dispatch") and "no reason attached" in rows[2]
    code, out, _ = run(capsys, "dlq", "list", "--queue", "worker", "--json")
    [entry] = json.loads(out)
    assert (entry["job_id"], entry["body"]) == ("r1", '{"job_id": "r1", "cmd": 1}')
    assert len(deployment.messages("WorkerDlqUrl")) == 1  # listing leaves messages in place


def test_dlq_redrive_returns_waiting_jobs_and_skips_final_ones(
    deployment: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    store, now = deployment.store, utcnow()
    store.create_if_absent("fixme", state=JobState.SUBMITTED, attempt=1, now=now, queue="dispatch", reason="denied")
    attributes = {
        "reason": {"DataType": "String", "StringValue": "RunTask rejected the launch: AccessDenied"},
        "job_id": {"DataType": "String", "StringValue": "fixme"},
        "attempt": {"DataType": "Number", "StringValue": "1"},
    }
    body = json.dumps({"job_id": "fixme", "command": ["x"], "dedicated": True})
    deployment.sqs.send_message(
        QueueUrl=deployment.urls["DispatchDlqUrl"], MessageBody=body, MessageAttributes=attributes
    )
    deployment.sqs.send_message(QueueUrl=deployment.urls["WorkerQueueUrl"], MessageBody='{"job_id": "bad", "x": 1}')
    deployment.worker().run()  # "bad" is REJECTED and copied to the worker DLQ
    no_id = deployment.sqs.send_message(QueueUrl=deployment.urls["WorkerDlqUrl"], MessageBody='{"command": ["y"]}')

    code, out, _ = run(capsys, "dlq", "redrive")
    assert code == 0
    assert "redriven 2 message(s)" in out
    assert "skipped bad: job is REJECTED (final)" in out
    [moved] = deployment.messages("DispatchQueueUrl")
    assert moved["Body"] == body
    assert set(moved["MessageAttributes"]) == {"attempt"}
    [revived] = deployment.messages("WorkerQueueUrl")
    assert json.loads(revived["Body"]) == {"command": ["y"], "job_id": f"sqs-{no_id['MessageId']}"}
    assert deployment.messages("DispatchDlqUrl") == []
    assert len(deployment.messages("WorkerDlqUrl")) == 1  # the rejected one stays
    record = store.get("fixme")
    assert record is not None and record.reason == "redriven from the DLQ by trainctl"


def test_dlq_redrive_only_named_jobs(deployment: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    for job_id in ("d1", "d2"):
        deployment.sqs.send_message(
            QueueUrl=deployment.urls["WorkerDlqUrl"], MessageBody=json.dumps({"job_id": job_id, "command": ["x"]})
        )
    code, out, _ = run(capsys, "--json", "dlq", "redrive", "--queue", "worker", "--job", "d2")
    assert code == 0
    assert json.loads(out) == {"redriven": [{"job_id": "d2", "queue": "worker"}], "skipped": []}
    assert [json.loads(m["Body"])["job_id"] for m in deployment.messages("WorkerDlqUrl")] == ["d1"]


# --- resources and errors -----------------------------------------------------------------------------------------


def test_explicit_resources_need_no_stack(
    aws: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    create_jobs_table(ddb, "other-jobs")
    url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="q")["QueueUrl"]
    monkeypatch.setenv("TRAINCTL_JOBS_TABLE", "other-jobs")
    code, out, _ = run(capsys, "submit", "--worker-queue-url", url, "--job-id", "e1", "--command", "x")
    assert (code, out) == (0, "e1\n")
    assert DynamoJobStore(ddb, "other-jobs").get("e1") is not None


def test_missing_stack_is_one_clear_line(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--stack", "Nope", "list")
    assert code == 1
    assert err == "trainctl: error: DescribeStacks failed: ValidationError: Stack with id Nope does not exist\n"


def test_missing_output_names_every_way_to_provide_it() -> None:
    session = Session(argparse.Namespace(stack=STACK), {})
    session._outputs = {}
    with pytest.raises(TrainctlError) as error:
        session.get("cluster")
    assert str(error.value) == (
        "cannot find the ECS cluster: stack TrainingAutoscaler has no output ClusterName; "
        "pass --cluster or set TRAINCTL_CLUSTER"
    )


@pytest.mark.parametrize(
    ("options", "variables"),
    [(["--endpoint-url", "http://127.0.0.1:7"], {}), ([], {"AWS_ENDPOINT_URL": "http://127.0.0.1:7"})],
    ids=["option", "AWS_ENDPOINT_URL"],
)
def test_unreachable_endpoint_is_one_line_without_traceback(options: list[str], variables: dict[str, str]) -> None:
    env = subprocess_env(AWS_MAX_ATTEMPTS="1", TRAINCTL_JOBS_TABLE="jobs", **variables)
    proc = subprocess.run(
        [PYTHON, "-m", "trainctl", *options, "status", "x"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        'trainctl: error: GetItem failed: Could not connect to the endpoint URL: "http://127.0.0.1:7/"'
    )  # port 7, not subprocess_env's default port 9: the option / variable was used
    assert len(proc.stderr.strip().splitlines()) == 1


def test_help_exits_0() -> None:
    proc = subprocess.run(
        [PYTHON, "-m", "trainctl", "--help"], cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    assert "submit" in proc.stdout and "dlq" in proc.stdout


def test_table_cuts_last_column_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "30")
    rows = [["job-1", "x" * 50]]
    terminal, pipe = Terminal(), io.StringIO()
    output.table(rows, ["JOB", "REASON"], terminal)
    output.table(rows, ["JOB", "REASON"], pipe)
    assert terminal.getvalue().splitlines()[1] == "job-1  " + "x" * 22 + "…"
    assert pipe.getvalue().splitlines()[1] == "job-1  " + "x" * 50
