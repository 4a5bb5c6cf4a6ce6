"""Task definitions the submitter launches with RunTask: one per training image (and per GPU image)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.artifacts import JOBS_PREFIX, MODELS_PREFIX, grant_prefix
from cdk_app.config import AppConfig
from cdk_app.images import acknowledge_image_pull, container_image
from cdk_app.nag import acknowledge
from cdk_app.retention import retention
from contracts import CONTAINER_NAME, EPHEMERAL_PORTS


class TrainingTasks(Construct):
    """`self.fargate` and `self.gpu` map image names to task definitions; one task role for all."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, artifacts: s3.IBucket):
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.task_role = iam.Role(
            self,
            "TaskRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Training tasks: read/write their job prefixes and publish models, nothing else",
        )
        grant_prefix(artifacts, self.task_role, JOBS_PREFIX, write=True)
        grant_prefix(artifacts, self.task_role, MODELS_PREFIX, write=True)
        self.fargate: dict[str, ecs.TaskDefinition] = {}
        self.gpu: dict[str, ecs.TaskDefinition] = {}
        for name, image in config.training_images.items():
            self.fargate[name] = self._fargate_definition(f"Fargate-{name}", config, image)
            if config.gpu_enabled:
                self.gpu[name] = self._gpu_definition(f"Gpu-{name}", config, image)

    @property
    def all_definitions(self) -> list[ecs.TaskDefinition]:
        return [*self.fargate.values(), *self.gpu.values()]

    def _fargate_definition(self, construct_id: str, config: AppConfig, image: str) -> ecs.TaskDefinition:
        definition = ecs.FargateTaskDefinition(
            self,
            construct_id,
            cpu=config.training_cpu,
            memory_limit_mib=config.training_memory,
            task_role=self.task_role,
            # Fargate Spot runs Linux x86_64 only (aws-facts.md §5).
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self._add_trainer(definition, image, memory_mib=config.training_memory)
        return definition

    def _gpu_definition(self, construct_id: str, config: AppConfig, image: str) -> ecs.TaskDefinition:
        definition = ecs.Ec2TaskDefinition(
            self, construct_id, task_role=self.task_role, network_mode=ecs.NetworkMode.AWS_VPC
        )
        # The GPU count is set per job by RunTask's container overrides (resourceRequirements).
        self._add_trainer(definition, image, memory_mib=config.training_memory)
        acknowledge(definition, "AwsSolutions-ECS2", "Only AWS_REGION, which CDK sets on EC2 tasks; no secrets.")
        return definition

    def _add_trainer(self, definition: ecs.TaskDefinition, image: str, *, memory_mib: int) -> None:
        definition.add_container(
            CONTAINER_NAME,
            image=container_image(image),
            memory_limit_mib=memory_mib,
            essential=True,
            # SIGTERM arrives 120 s before a Spot stop; give the job all of it to checkpoint (aws-facts.md §5).
            stop_timeout=Duration.seconds(120),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="job", log_group=self.log_group),
            # Ports a framework listens on for its peers (gloo, NCCL bootstrap) come from this range, which the
            # task security group opens between tasks (contracts.RENDEZVOUS_PORTS).
            system_controls=[ecs.SystemControl(namespace="net.ipv4.ip_local_port_range", value=EPHEMERAL_PORTS)],
        )
        acknowledge_image_pull(definition)
