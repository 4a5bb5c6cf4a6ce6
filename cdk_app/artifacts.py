"""S3 buckets: artifacts (checkpoints and models under per-job prefixes) and access logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.nag import acknowledge, acknowledge_wildcard, logical_ref

JOBS_PREFIX = "jobs/"
MODELS_PREFIX = "models/"
_READ = ["s3:GetObject", "s3:GetObjectVersion"]
_WRITE = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]


def grant_prefix(bucket: s3.IBucket, role: iam.IRole, prefix: str, *, write: bool) -> None:
    """Objects under `prefix` only (read, or read and write), and listing of that prefix only."""
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=_READ + (_WRITE if write else []), resources=[bucket.arn_for_objects(f"{prefix}*")])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        )
    )
    acknowledge_wildcard(
        role,
        f"{logical_ref(bucket, 'Arn')}/{prefix}*",
        f"Object keys under {prefix} are per job and not known at deploy time; access stops at this prefix.",
    )


class ArtifactsBucket(Construct):
    """`self.bucket` holds `jobs/<job id>/...` (checkpoints, outputs) and `models/` (trained models).

    `self.access_logs` receives the artifacts bucket's server access logs and the ALB's access logs.
    """

    def __init__(self, scope: Construct, construct_id: str, *, checkpoint_retention_days: int):
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # ALB log delivery supports SSE-S3 only
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.access_logs, "AwsSolutions-S1", "This is the access-log bucket itself; logging into itself would loop."
        )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-checkpoints",
                    prefix=JOBS_PREFIX,
                    expiration=Duration.days(checkpoint_retention_days),
                    noncurrent_version_expiration=Duration.days(7),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                ),
                s3.LifecycleRule(
                    id="expire-old-model-versions",
                    prefix=MODELS_PREFIX,
                    noncurrent_version_expiration=Duration.days(90),
                ),
            ],
        )
