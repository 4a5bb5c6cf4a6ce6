"""DynamoDB table: one item per job (state, attempts, task, capacity, timestamps, reason)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_app.nag import acknowledge_wildcard, logical_ref
from contracts import (
    RENDEZVOUS_ATTRIBUTES,
    STATE_ATTRIBUTE,
    STATE_INDEX,
    TABLE_PARTITION_KEY,
    UPDATED_AT_ATTRIBUTE,
)


class JobsTable(Construct):
    """On-demand table with point-in-time recovery and a by-state index."""

    def __init__(self, scope: Construct, construct_id: str):
        super().__init__(scope, construct_id)
        self.table = dynamodb.TableV2(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=STATE_INDEX,
                    partition_key=dynamodb.Attribute(name=STATE_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name=UPDATED_AT_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
                )
            ],
        )


def grant_rendezvous_access(table: dynamodb.ITableV2, role: iam.IRole) -> None:
    """Training tasks: GetItem / UpdateItem limited to the rendezvous attributes (IAM's attribute-level control:
    a projection or update naming only these, returning no other values)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
            resources=[table.table_arn],
            conditions={
                "ForAllValues:StringEquals": {"dynamodb:Attributes": list(RENDEZVOUS_ATTRIBUTES)},
                "StringEqualsIfExists": {
                    "dynamodb:Select": "SPECIFIC_ATTRIBUTES",
                    "dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"],
                },
            },
        )
    )


def grant_jobs_access(table: dynamodb.ITableV2, role: iam.IRole) -> None:
    """Read and write job items, and query the by-state index."""
    table.grant_read_write_data(role)
    acknowledge_wildcard(
        role, f"{logical_ref(table, 'Arn')}/index/*", "Covers this table's own indexes (the by-state index) only."
    )
