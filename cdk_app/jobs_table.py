"""DynamoDB table: one item per job (state, attempts, task, capacity, timestamps, reason)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_app.nag import acknowledge_wildcard, logical_ref

# Names shared with lambdas/common (the runtime code reads the same schema).
PARTITION_KEY = "pk"
TTL_ATTRIBUTE = "expires_at"
STATE_INDEX = "by-state"
RENDEZVOUS_ATTRIBUTES = [PARTITION_KEY, "attempt", "rendezvous"]
"""What a rank of a distributed job may read and write in its job's item (worker/rendezvous.py)."""


class JobsTable(Construct):
    """On-demand table with point-in-time recovery, a TTL for short-lived records and a by-state index."""

    def __init__(self, scope: Construct, construct_id: str):
        super().__init__(scope, construct_id)
        self.table = dynamodb.TableV2(
            self,
            "Table",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            removal_policy=RemovalPolicy.RETAIN,
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=STATE_INDEX,
                    partition_key=dynamodb.Attribute(name="state", type=dynamodb.AttributeType.STRING),
                    sort_key=dynamodb.Attribute(name="updated_at", type=dynamodb.AttributeType.STRING),
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
                "ForAllValues:StringEquals": {"dynamodb:Attributes": RENDEZVOUS_ATTRIBUTES},
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
