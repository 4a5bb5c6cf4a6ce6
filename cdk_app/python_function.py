"""One Lambda function from `lambdas/`, with its own role, log group and the Powertools layer."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.images import REPO_ROOT

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
METRICS_NAMESPACE = "TrainingAutoscaler"
# The AWS-managed public Powertools layer (it also ships pydantic), so synth needs no bundling or Docker.
_LAYER_ARN = "arn:{partition}:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{runtime}-arm64:{version}"


class PythonFunction(Construct):
    """`self.function` runs `handler` (e.g. `scaler.handler.handler`) with `self.role`, which starts empty."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        service_name: str,
        environment: Mapping[str, str],
        description: str,
        timeout: Duration,
        log_retention: logs.RetentionDays,
        powertools_layer_version: int,
        reserved_concurrency: int | None = None,
    ):
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        # Only this function's own log group (instead of the AWSLambdaBasicExecutionRole managed policy).
        self.log_group.grant_write(self.role)
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            _LAYER_ARN.format(
                partition=Aws.PARTITION,
                region=Aws.REGION,
                runtime=RUNTIME.name.replace(".", ""),
                version=powertools_layer_version,
            ),
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=lambda_.Code.from_asset(
                str(REPO_ROOT / "lambdas"),
                exclude=["**/__pycache__", "**/*.pyc", "**/.mypy_cache", "fakes"],  # in-memory ports: tests, bench
            ),
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            memory_size=512,
            reserved_concurrent_executions=reserved_concurrency,
            timeout=timeout,
            description=description,
            environment={
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **environment,
            },
        )
