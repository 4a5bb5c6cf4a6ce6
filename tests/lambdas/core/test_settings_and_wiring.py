"""Settings fail loudly naming the variable; handler modules import without boto3 or clients."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jobs.errors import ConfigError
from submitter.settings import SubmitterSettings, task_family
from task_events.settings import TaskEventsSettings

ROOT = Path(__file__).resolve().parents[3]

BASE = {
    "JOBS_TABLE_NAME": "jobs",
    "CLUSTER_NAME": "training",
    "DISPATCH_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/dispatch",
    "DISPATCH_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/1/dispatch-dlq",
    "TASK_DEFINITIONS": json.dumps({"default": "arn:aws:ecs:us-east-1:1:task-definition/training:4"}),
    "GPU_TASK_DEFINITIONS": "{}",
    "GPU_CAPACITY_PROVIDER": "",
    "SUBNET_IDS": "subnet-a, subnet-b",
    "SECURITY_GROUP_IDS": "sg-1",
    "MAX_CONCURRENT_TASKS": "20",
    "ARTIFACTS_BUCKET": "artifacts",
    "MAX_NODES": "8",
}


def settings(**changes: Any) -> SubmitterSettings:
    env = {**BASE, **changes}
    return SubmitterSettings.from_env({k: v for k, v in env.items() if v is not None})


def test_valid_settings() -> None:
    loaded = settings()
    assert loaded.subnet_ids == ("subnet-a", "subnet-b") and loaded.max_concurrent_tasks == 20
    assert not loaded.gpu_enabled and loaded.task_families == ("training",)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"CLUSTER_NAME": None}, "CLUSTER_NAME: is not set"),
        ({"JOBS_TABLE_NAME": " "}, "JOBS_TABLE_NAME: is empty"),
        ({"MAX_CONCURRENT_TASKS": "ten"}, "MAX_CONCURRENT_TASKS: must be an integer, got 'ten'"),
        ({"MAX_CONCURRENT_TASKS": "0"}, "MAX_CONCURRENT_TASKS: must be >= 1, got 0"),
        ({"TASK_DEFINITIONS": "{not json"}, "TASK_DEFINITIONS: is not valid JSON"),
        ({"TASK_DEFINITIONS": json.dumps({"big": "arn"})}, "TASK_DEFINITIONS: must have the key 'default'"),
        ({"TASK_DEFINITIONS": json.dumps({"default": 3})}, "TASK_DEFINITIONS: must be a JSON object of non-empty"),
        ({"SUBNET_IDS": ", ,"}, "SUBNET_IDS: must list at least one value"),
        ({"MAX_NODES": "65"}, "MAX_NODES: must be <= 64, got 65"),
        ({"GPU_CAPACITY_PROVIDER": "gpu"}, "GPU_TASK_DEFINITIONS: must name at least one image"),
        ({"GPU_TASK_DEFINITIONS": json.dumps({"default": "arn"})}, "GPU_CAPACITY_PROVIDER: must be set"),
    ],
)
def test_invalid_settings_name_the_variable(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**changes)
    assert str(caught.value).startswith(message)


def test_gpu_settings() -> None:
    loaded = settings(GPU_CAPACITY_PROVIDER="gpu-spot", GPU_TASK_DEFINITIONS=json.dumps({"default": "training-gpu:2"}))
    assert loaded.gpu_enabled and loaded.task_families == ("training", "training-gpu")


def test_task_family() -> None:
    assert task_family("arn:aws:ecs:us-east-1:1:task-definition/train-x:12") == "train-x"
    assert task_family("train-x:12") == task_family("train-x") == "train-x"


def test_task_events_settings() -> None:
    with pytest.raises(ConfigError, match="CLUSTER_NAME: is not set"):
        TaskEventsSettings.from_env({"JOBS_TABLE_NAME": "jobs", "DISPATCH_QUEUE_URL": "u"})


@pytest.mark.parametrize("module", ["submitter.handler", "task_events.handler"])
def test_handler_import_creates_no_client_and_does_not_import_boto3(module: str) -> None:
    code = f"import sys; import {module}; print('boto3' in sys.modules, 'aws_xray_sdk' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": "lambdas"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["False", "False"]
