"""Fixtures for the worker, model server and trainctl tests: dummy AWS credentials and moto in-process."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.containers.helpers import BUCKET, REGION


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region; no real endpoint, config file or profile is ever read."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "TRAINCTL_", "ECS_", "TRAIN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture
def aws(aws_env: None) -> Iterator[None]:
    """moto in-process for the duration of the test."""
    from moto import mock_aws

    from worker import example_train

    example_train._s3_client = None
    with mock_aws():
        yield
    example_train._s3_client = None


@pytest.fixture
def s3(aws: None) -> Any:
    """An S3 client with the artifacts bucket created."""
    import boto3

    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET)
    return client
