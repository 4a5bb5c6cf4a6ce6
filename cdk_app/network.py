"""VPC over two AZs: public subnets for the ALB only, private subnets (no public IPs) for tasks."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from contracts import RENDEZVOUS_PORTS


class Network(Construct):
    """The VPC, its flow logs, and the security group shared by training and worker tasks."""

    def __init__(self, scope: Construct, construct_id: str, *, nat_gateways: int, log_retention: logs.RetentionDays):
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(
                    name="tasks",
                    subnet_type=(
                        ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
                    ),
                    cidr_mask=20,
                ),
            ],
        )
        flow_log_group = logs.LogGroup(self, "FlowLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group))
        self.task_subnets = ec2.SubnetSelection(subnet_group_name="tasks")
        self.task_security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="Training and worker tasks: no inbound, outbound to AWS APIs and registries",
            allow_all_outbound=True,
        )
        self.task_security_group.add_ingress_rule(
            self.task_security_group,
            ec2.Port.tcp_range(*RENDEZVOUS_PORTS),
            "Ranks of a distributed job: rendezvous and collectives, from tasks of this group only",
        )
