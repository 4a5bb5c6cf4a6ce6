"""The whole loop with real processes: a `python -m worker` process runs the example training job, gets a real
SIGTERM mid-job, lets it checkpoint to S3 and requeues it; a second worker resumes it from the checkpoint; the
model server then serves the model it published. AWS is moto's server in a thread on 127.0.0.1 (child
processes cannot see an in-process mock)."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from starlette.testclient import TestClient

from aws.job_store import DynamoJobStore
from jobs.states import JobState
from serving.app import Settings, create_app
from serving.model import ModelStore, S3Reader
from tests.containers.helpers import PYTHON, REGION, REPO, AgentStandIn, create_jobs_table, subprocess_env, wait_until

pytestmark = pytest.mark.slow

JOB_ID = "e2e-job"
BUCKET = "e2e-artifacts"
# Attempt 1 trains slowly (so the SIGTERM certainly lands mid-run); the resumed attempt runs at full speed.
COMMAND = [
    "sh",
    "-c",
    'if [ "$TRAIN_ATTEMPT" = 1 ]; then S=0.05; else S=0; fi; '
    'exec "$0" -m worker.example_train --steps 2000 --checkpoint-every 10 --step-seconds "$S"',
    PYTHON,
]


@pytest.fixture
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
        server.stop()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([PYTHON, "-m", "worker"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_sigterm_checkpoint_requeue_resume_and_serve(moto_server: str, tmp_path: Path) -> None:
    clients: dict[str, Any] = {
        name: boto3.client(name, region_name=REGION, endpoint_url=moto_server) for name in ("sqs", "dynamodb", "s3")
    }
    sqs, s3 = clients["sqs"], clients["s3"]
    queue_url = sqs.create_queue(QueueName="e2e-worker")["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName="e2e-worker-dlq")["QueueUrl"]
    table = create_jobs_table(clients["dynamodb"], "e2e-jobs")
    s3.create_bucket(Bucket=BUCKET)
    store = DynamoJobStore(clients["dynamodb"], table)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"job_id": JOB_ID, "command": COMMAND}))

    with AgentStandIn() as agent:
        env = subprocess_env(
            AWS_ENDPOINT_URL=moto_server,
            WORKER_QUEUE_URL=queue_url,
            WORKER_DLQ_URL=dlq_url,
            JOBS_TABLE_NAME=table,
            ARTIFACTS_BUCKET=BUCKET,
            WORKER_WAIT_SECONDS="1",
            WORKER_SHUTDOWN_GRACE_SECONDS="30",
            WORKER_JOB_DIR=str(tmp_path),
            ECS_AGENT_URI=agent.uri,
        )
        first = start_worker(env, tmp_path / "worker1.log")
        try:
            checkpoint_key = f"jobs/{JOB_ID}/checkpoints/checkpoint.json"
            wait_until(
                lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix=checkpoint_key).get("KeyCount", 0) > 0,
                what="the first checkpoint in S3",
            )
            first.send_signal(signal.SIGTERM)
            assert first.wait(timeout=60) == 0
        finally:
            first.kill()
        log1 = (tmp_path / "worker1.log").read_text()
        assert "signal 15: checkpointing and stopping" in log1  # the job got the forwarded SIGTERM
        job = store.get(JOB_ID)
        assert job is not None
        assert (job.state, job.attempt, job.interruptions) == (JobState.RETRYING, 1, 1), log1
        assert "interrupted: worker received SIGTERM" in (job.reason or "")
        assert agent.puts() == [{"ProtectionEnabled": True, "ExpiresInMinutes": 60}, {"ProtectionEnabled": False}]
        saved = json.loads(s3.get_object(Bucket=BUCKET, Key=checkpoint_key)["Body"].read())
        assert 0 < saved["step"] < 2000

        second = start_worker({**env, "WORKER_EXIT_WHEN_IDLE": "true"}, tmp_path / "worker2.log")
        try:
            assert second.wait(timeout=120) == 0
        finally:
            second.kill()
    log2 = (tmp_path / "worker2.log").read_text()
    assert f"[{JOB_ID}#2] job {JOB_ID} attempt 2: resumed from step {saved['step']}" in log2, log2
    job = store.get(JOB_ID)
    assert job is not None
    assert (job.state, job.attempt, job.exit_code) == (JobState.SUCCEEDED, 2, 0)
    assert [h["to"] for h in job.history] == ["SUBMITTED", "RUNNING", "RETRYING", "RUNNING", "SUCCEEDED"]
    visible = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert (visible["ApproximateNumberOfMessages"], visible["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")

    model = json.loads(s3.get_object(Bucket=BUCKET, Key=f"models/{JOB_ID}/model.json")["Body"].read())
    assert (model["attempt"], model["resumed_from_step"]) == (2, saved["step"])
    store_ = ModelStore(
        S3Reader(BUCKET, client=s3), bucket=BUCKET, pointer_key="models/LATEST", models_prefix="models/"
    )
    with TestClient(create_app(Settings(bucket=BUCKET), store_, poll=False)) as client:
        assert store_.refresh() is True
        assert client.get("/model").json()["model"]["job_id"] == JOB_ID
        answer = client.post("/predict", json={"instances": [[0.5, -1.0, 2.0, 0.0]]})
        assert answer.status_code == 200
        assert 0.0 <= answer.json()["predictions"][0]["probability"] <= 1.0
