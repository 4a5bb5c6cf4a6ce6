"""moto world for the submitter and task-events tests: table, queues + DLQs, VPC, ECS cluster, task defs."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.moto_api import state_manager

from aws import clients as common_aws
from submitter import wiring as submitter_wiring
from task_events import wiring as task_events_wiring
from tests.lambdas.core.helpers import CLUSTER, REGION, FakeLambdaContext, World

# Powertools Logger/Metrics read these when the handler modules are imported (at collection time, before any
# fixture runs); in Lambda the CDK stack sets them.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "core-tests")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "TrainingAutoscaler")


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "core-tests")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "TrainingAutoscaler")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")


def _reset_caches() -> None:
    submitter_wiring.reset()
    task_events_wiring.reset()
    common_aws.reset_clients()


@pytest.fixture
def mocked_aws(aws_credentials: None) -> Iterator[None]:
    _reset_caches()
    with mock_aws():
        # moto resets boto3's default session; share one across tests so botocore's loaded service models
        # (the bulk of client-creation time) are reused. Credentials are still read from the env per client.
        boto3.DEFAULT_SESSION = _shared_session()
        # Pin ECS tasks in RUNNING: every DescribeTasks would otherwise advance them one lifecycle step.
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 1_000_000})
        try:
            yield
        finally:
            state_manager.unset_transition("ecs::task")
    _reset_caches()


@functools.cache
def _shared_session() -> boto3.session.Session:
    return boto3.session.Session()


def _container(name: str) -> dict[str, Any]:
    return {"name": name, "image": "public.ecr.aws/docker/library/python:3.13", "memory": 2048, "essential": True}


def build_world(max_concurrent: int = 10, gpu: bool = False) -> World:
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName="jobs",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "state", "AttributeType": "S"},
            {"AttributeName": "updated_at", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-state",
                "KeySchema": [
                    {"AttributeName": "state", "KeyType": "HASH"},
                    {"AttributeName": "updated_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )

    sqs = boto3.client("sqs", region_name=REGION)
    urls = {}
    for name in ("dispatch", "worker"):
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": "360",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
            },
        )["QueueUrl"]
        urls[name] = url
        urls[f"{name}-dlq"] = dlq_url
    dispatch_arn = sqs.get_queue_attributes(QueueUrl=urls["dispatch"], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]

    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        for i, az in ((1, "a"), (2, "b"))
    ]
    sg = ec2.create_security_group(GroupName="tasks", Description="training tasks", VpcId=vpc)["GroupId"]

    ecs = boto3.client("ecs", region_name=REGION)
    cluster_arn = ecs.create_cluster(
        clusterName=CLUSTER,
        capacityProviders=["FARGATE", "FARGATE_SPOT"],
        defaultCapacityProviderStrategy=[
            {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
            {"capacityProvider": "FARGATE_SPOT", "weight": 4},
        ],
    )["cluster"]["clusterArn"]
    task_definitions = {}
    for image, family in (("default", "training"), ("big", "training-big")):
        task_definitions[image] = ecs.register_task_definition(
            family=family,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="1024",
            memory="2048",
            containerDefinitions=[_container("trainer")],
        )["taskDefinition"]["taskDefinitionArn"]
    ecs.register_task_definition(
        family="worker",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="1024",
        memory="2048",
        containerDefinitions=[_container("worker")],
    )

    gpu_defs = {"default": "arn:aws:ecs:us-east-1:123456789012:task-definition/training-gpu:1"} if gpu else {}
    env = {
        "JOBS_TABLE_NAME": "jobs",
        "CLUSTER_NAME": CLUSTER,
        "DISPATCH_QUEUE_URL": urls["dispatch"],
        "DISPATCH_DLQ_URL": urls["dispatch-dlq"],
        "TASK_DEFINITIONS": json.dumps(task_definitions),
        "GPU_TASK_DEFINITIONS": json.dumps(gpu_defs),
        "GPU_CAPACITY_PROVIDER": "gpu-spot" if gpu else "",
        "SUBNET_IDS": ",".join(subnets),
        "SECURITY_GROUP_IDS": sg,
        "MAX_CONCURRENT_TASKS": str(max_concurrent),
        "ARTIFACTS_BUCKET": "artifacts-bucket",
        "MAX_NODES": "4",
        "WORKER_QUEUE_URL": urls["worker"],
    }
    return World(
        table="jobs",
        dispatch_url=urls["dispatch"],
        dispatch_arn=dispatch_arn,
        dlq_url=urls["dispatch-dlq"],
        worker_url=urls["worker"],
        cluster=CLUSTER,
        cluster_arn=cluster_arn,
        task_definitions=task_definitions,
        subnets=subnets,
        security_group=sg,
        env=env,
    )


@pytest.fixture
def world(mocked_aws: None, monkeypatch: pytest.MonkeyPatch) -> World:
    built = build_world()
    for name, value in built.env.items():
        monkeypatch.setenv(name, value)
    _reset_caches()
    return built


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()


class FakeClock:
    """A controllable clock for the ports (pure logic takes `now`; services read the clock port)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clients(world: World) -> dict[str, Any]:
    return {name: boto3.client(name, region_name=REGION) for name in ("dynamodb", "sqs", "ecs")}
