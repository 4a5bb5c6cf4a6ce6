"""ALB-fronted Fargate service for the trained model, scaled on requests per target and on CPU."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.artifacts import MODELS_PREFIX, grant_prefix
from cdk_app.config import AppConfig
from cdk_app.images import acknowledge_image_pull, container_image
from cdk_app.nag import acknowledge

SERVING_PORT = 8080
HEALTH_PATH = "/health"


class ModelServing(Construct):
    """`self.service` is the ALB + Fargate service; tasks read only the `models/` prefix."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        cluster: ecs.ICluster,
        task_subnets: ec2.SubnetSelection,
        artifacts: s3.IBucket,
        access_logs: s3.IBucket,
    ):
        super().__init__(scope, construct_id)
        self.service = ecs_patterns.ApplicationLoadBalancedFargateService(
            self,
            "Service",
            cluster=cluster,
            cpu=config.serving_cpu,
            memory_limit_mib=config.serving_memory,
            task_subnets=task_subnets,
            assign_public_ip=False,
            public_load_balancer=True,
            open_listener=False,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            task_image_options=ecs_patterns.ApplicationLoadBalancedTaskImageOptions(
                image=container_image(config.serving_image),
                container_port=SERVING_PORT,
                environment={
                    "ARTIFACTS_BUCKET": artifacts.bucket_name,
                    "MODELS_PREFIX": MODELS_PREFIX,
                    "PORT": str(SERVING_PORT),
                },
            ),
        )
        self.service.load_balancer.connections.allow_from(
            ec2.Peer.ipv4(config.serving_ingress_cidr), ec2.Port.tcp(80), "HTTP from the allowed CIDR"
        )
        self.service.load_balancer.log_access_logs(access_logs, "alb")
        self.service.target_group.configure_health_check(
            path=HEALTH_PATH, interval=Duration.seconds(15), healthy_threshold_count=2
        )
        self.service.target_group.set_attribute("deregistration_delay.timeout_seconds", "30")
        grant_prefix(artifacts, self.service.task_definition.task_role, MODELS_PREFIX, write=False)
        acknowledge_image_pull(self.service.task_definition)
        acknowledge(
            self.service.task_definition, "AwsSolutions-ECS2", "Plain settings (bucket name, port); no secrets."
        )
        acknowledge(
            self.service.load_balancer,
            "AwsSolutions-EC23",
            "A public model endpoint; ingress is limited to the configured serving_ingress_cidr.",
        )
        scaling = self.service.service.auto_scale_task_count(
            min_capacity=config.serving_min_tasks, max_capacity=config.serving_max_tasks
        )
        scaling.scale_on_request_count(
            "RequestsPerTarget",
            requests_per_target=config.serving_requests_per_target,
            target_group=self.service.target_group,
        )
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=config.serving_cpu_target_percent)
