"""ECS cluster with FARGATE and FARGATE_SPOT, optionally an EC2 GPU Spot capacity provider."""

from __future__ import annotations

from aws_cdk import Duration, Stack, Token
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_app.config import AppConfig
from cdk_app.nag import acknowledge, acknowledge_wildcard, logical_ref

_ECS_AGENT_REASON = "CDK's standard ECS agent policy for container instances (register, poll, submit state)."
SPOT = "FARGATE_SPOT"
ON_DEMAND = "FARGATE"


class TrainingCluster(Construct):
    """The cluster and its capacity providers; the default strategy is Spot first with an on-demand base."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: AppConfig,
        vpc: ec2.IVpc,
        task_subnets: ec2.SubnetSelection,
    ):
        super().__init__(scope, construct_id)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            enable_fargate_capacity_providers=True,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.default_strategy = [
            ecs.CapacityProviderStrategy(capacity_provider=SPOT, weight=config.spot_weight),
            ecs.CapacityProviderStrategy(
                capacity_provider=ON_DEMAND, weight=config.on_demand_weight, base=config.on_demand_base
            ),
        ]
        self.cluster.add_default_capacity_provider_strategy(self.default_strategy)
        self.gpu_capacity_provider: ecs.AsgCapacityProvider | None = None
        if config.gpu_enabled:
            self.gpu_capacity_provider = self._add_gpu_capacity(config, vpc, task_subnets)

    def _add_gpu_capacity(
        self, config: AppConfig, vpc: ec2.IVpc, task_subnets: ec2.SubnetSelection
    ) -> ecs.AsgCapacityProvider:
        """EC2 Spot GPU instances (capacity-optimized) that ECS scales from zero through managed scaling."""
        launch_template = ec2.LaunchTemplate(
            self,
            "GpuLaunchTemplate",
            machine_image=ecs.EcsOptimizedImage.amazon_linux2(ecs.AmiHardwareType.GPU),
            instance_type=ec2.InstanceType(config.gpu_instance_types[0]),
            role=iam.Role(
                self, "GpuInstanceRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com")
            ),  # the ECS agent's permissions are added by the cluster when it adopts the group
            security_group=ec2.SecurityGroup(self, "GpuInstances", vpc=vpc, allow_all_outbound=True),
            require_imdsv2=True,
            user_data=ec2.UserData.for_linux(),
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(100, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3),
                )
            ],
        )
        group = autoscaling.AutoScalingGroup(
            self,
            "GpuSpotGroup",
            vpc=vpc,
            vpc_subnets=task_subnets,
            min_capacity=0,
            max_capacity=config.gpu_max_instances,
            new_instances_protected_from_scale_in=True,
            mixed_instances_policy=autoscaling.MixedInstancesPolicy(
                launch_template=launch_template,
                launch_template_overrides=[
                    autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(name))
                    for name in config.gpu_instance_types
                ],
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_base_capacity=0,
                    on_demand_percentage_above_base_capacity=0,
                    spot_allocation_strategy=autoscaling.SpotAllocationStrategy.CAPACITY_OPTIMIZED,
                ),
            ),
            notifications=[],
            default_instance_warmup=Duration.minutes(5),
        )
        provider = ecs.AsgCapacityProvider(
            self,
            "GpuCapacityProvider",
            auto_scaling_group=group,
            enable_managed_scaling=True,
            enable_managed_termination_protection=True,
            target_capacity_percent=100,
            spot_instance_draining=True,
        )
        self.cluster.add_asg_capacity_provider(provider)
        instance_role = launch_template.role
        assert instance_role is not None
        acknowledge(instance_role, "AwsSolutions-IAM5[Action::ecs:Submit*]", _ECS_AGENT_REASON)
        acknowledge_wildcard(instance_role, "*", _ECS_AGENT_REASON)
        acknowledge(group, "AwsSolutions-EC26", "The launch template's only volume is encrypted (encrypted=True).")
        acknowledge(
            group, "AwsSolutions-AS3", "ECS managed scaling drives this group; its activity shows in the ECS console."
        )
        return provider


def task_arns(cluster: ecs.ICluster) -> str:
    """IAM resource pattern for every task of `cluster` (task ARNs carry the cluster name)."""
    return Stack.of(cluster).format_arn(service="ecs", resource="task", resource_name=f"{cluster.cluster_name}/*")


def acknowledge_task_arns(role: iam.IRole, cluster: ecs.ICluster) -> None:
    """Task IDs are created at run time, so task-level permissions name the cluster's task prefix."""
    stack = Stack.of(cluster)
    partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
    acknowledge_wildcard(
        role,
        f"arn:{partition}:ecs:{stack.region}:<AWS::AccountId>:task/{logical_ref(cluster)}/*",
        "Task IDs are assigned at launch; the permission is limited to tasks of this one cluster.",
    )
