"""Where trainctl finds the deployment: explicit options, then TRAINCTL_* variables, then the stack's outputs.

DescribeStacks is called at most once per run, and only when something was not given explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from trainctl.errors import TrainctlError, aws_call

if TYPE_CHECKING:
    from aws.job_store import DynamoJobStore
    from jobs.record import JobRecord

DEFAULT_STACK = "TrainingAutoscaler"
QUEUES = {"worker": ("worker_queue_url", "worker_dlq_url"), "dispatch": ("dispatch_queue_url", "dispatch_dlq_url")}
"""A job's queue -> the resources of its queue and of its DLQ."""


class Resource(NamedTuple):
    key: str  # attribute name on the parsed options; option --<key with dashes>, variable TRAINCTL_<KEY>
    output: str  # the stack output
    what: str

    @property
    def option(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def env(self) -> str:
        return "TRAINCTL_" + self.key.upper()


RESOURCES: dict[str, Resource] = {
    r.key: r
    for r in (
        Resource("worker_queue_url", "WorkerQueueUrl", "worker queue"),
        Resource("dispatch_queue_url", "DispatchQueueUrl", "dispatch queue"),
        Resource("worker_dlq_url", "WorkerDlqUrl", "worker DLQ"),
        Resource("dispatch_dlq_url", "DispatchDlqUrl", "dispatch DLQ"),
        Resource("jobs_table", "JobsTableName", "jobs table"),
        Resource("cluster", "ClusterName", "ECS cluster"),
        Resource("worker_service", "WorkerServiceName", "worker service"),
        Resource("artifacts_bucket", "ArtifactsBucketName", "artifacts bucket"),
        Resource("training_log_group", "TrainingLogGroupName", "training tasks' log group"),
        Resource("worker_log_group", "WorkerLogGroupName", "workers' log group"),
    )
}


class Session:
    """boto3 clients (created on first use) and resource names for one trainctl run."""

    def __init__(self, options: Any, environ: Mapping[str, str]) -> None:
        self.options = options
        self.environ = environ
        self.stack = getattr(options, "stack", None) or environ.get("TRAINCTL_STACK") or DEFAULT_STACK
        self._clients: dict[str, Any] = {}
        self._outputs: dict[str, str] | None = None
        self._session: Any = None
        self._jobs: DynamoJobStore | None = None

    def client(self, service: str) -> Any:
        if service not in self._clients:
            if self._session is None:
                import boto3

                self._session = boto3.session.Session(
                    profile_name=getattr(self.options, "profile", None),
                    region_name=getattr(self.options, "region", None),
                )
            endpoint = getattr(self.options, "endpoint_url", None)  # else boto3 honours AWS_ENDPOINT_URL
            self._clients[service] = self._session.client(service, endpoint_url=endpoint)
        return self._clients[service]

    def jobs(self) -> DynamoJobStore:
        """The jobs table."""
        if self._jobs is None:
            from aws.job_store import DynamoJobStore

            self._jobs = DynamoJobStore(self.client("dynamodb"), self.get("jobs_table"))
        return self._jobs

    def job(self, job_id: str) -> JobRecord:
        """The job's record; raises TrainctlError when there is no such job."""
        record = aws_call("GetItem", self.jobs().get, job_id=job_id)
        if record is None:
            raise TrainctlError(f"job {job_id!r} not found")
        return record

    def outputs(self) -> dict[str, str]:
        if self._outputs is None:
            stacks = aws_call("DescribeStacks", self.client("cloudformation").describe_stacks, StackName=self.stack)
            found = stacks.get("Stacks") or [{}]
            self._outputs = {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", [])}
        return self._outputs

    def get(self, key: str) -> str:
        """The resource's name/URL; raises TrainctlError saying every way to provide it."""
        value = self.find(key)
        if value:
            return value
        resource = RESOURCES[key]
        raise TrainctlError(
            f"cannot find the {resource.what}: stack {self.stack} has no output {resource.output}; "
            f"pass {resource.option} or set {resource.env}"
        )

    def find(self, key: str) -> str | None:
        resource = RESOURCES[key]
        explicit = getattr(self.options, key, None) or self.environ.get(resource.env)
        if explicit:
            return str(explicit)
        return self.outputs().get(resource.output) or None
