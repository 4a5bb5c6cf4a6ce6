"""Properties of the synthesized stack: what each construct must guarantee."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from tests.infra.conftest import resources_of


def test_cluster_has_fargate_and_spot_with_spot_first_default(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {
            "CapacityProviders": Match.array_with(["FARGATE", "FARGATE_SPOT"]),
            "DefaultCapacityProviderStrategy": Match.array_with(
                [Match.object_like({"CapacityProvider": "FARGATE_SPOT", "Weight": 4})]
            ),
        },
    )
    template.has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
    )


def test_worker_service_uses_spot_and_never_carries_a_desired_count(raw_template: dict) -> None:
    services = resources_of(raw_template, "AWS::ECS::Service")
    workers = [s for s in services.values() if "CapacityProviderStrategy" in s["Properties"]]
    assert len(workers) == 1
    props = workers[0]["Properties"]
    assert "FARGATE_SPOT" in {p["CapacityProvider"] for p in props["CapacityProviderStrategy"]}
    # No DesiredCount: a redeploy keeps the scaler's live count (aws-cdk#13130).
    assert "DesiredCount" not in props
    network = props["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    assert props["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}


def test_queues_have_dlq_redrive_sse_and_tls_only_policies(raw_template: dict) -> None:
    queues = resources_of(raw_template, "AWS::SQS::Queue")
    with_redrive = [q for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    assert len(with_redrive) == 2  # the worker queue and the dispatch queue
    assert all("deadLetterTargetArn" in q["Properties"]["RedrivePolicy"] for q in with_redrive)
    assert all(q["Properties"].get("SqsManagedSseEnabled") for q in queues.values())
    policies = resources_of(raw_template, "AWS::SQS::QueuePolicy").values()
    tls_denies = [
        s
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(tls_denies) == len(queues)


def test_worker_queue_visibility_covers_three_heartbeats(raw_template: dict) -> None:
    timeouts = sorted(
        q["Properties"]["VisibilityTimeout"]
        for q in resources_of(raw_template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    )
    assert timeouts == [180, 360]  # worker: 3 x 60 s heartbeat; dispatch: 6 x the submitter's 60 s timeout


def test_each_queue_has_its_own_max_receive_count(raw_template: dict) -> None:
    """Attempts, lost leases and interruptions all consume receives on the worker queue: it gets more room."""
    by_visibility = {
        q["Properties"]["VisibilityTimeout"]: q["Properties"]["RedrivePolicy"]["maxReceiveCount"]
        for q in resources_of(raw_template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    }
    assert by_visibility == {180: 30, 360: 5}  # worker queue (180 s visibility): 30; dispatch queue: 5


def test_jobs_table_is_on_demand_with_pitr_and_state_index(template: Template) -> None:
    (table,) = template.find_resources("AWS::DynamoDB::GlobalTable").values()
    assert "TimeToLiveSpecification" not in table["Properties"]  # nothing writes an expiry attribute
    template.has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [Match.object_like({"IndexName": "by-state"})],
            "Replicas": [Match.object_like({"PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True}})],
        },
    )


def test_artifacts_bucket_is_private_encrypted_versioned_logged_with_checkpoint_lifecycle(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "BucketEncryption": Match.any_value(),
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "artifacts/"}),
            "LifecycleConfiguration": {
                "Rules": Match.array_with([Match.object_like({"Id": "expire-old-checkpoints", "Prefix": "jobs/"})])
            },
        },
    )


def test_serving_alb_checks_health_and_scales_on_requests_and_cpu(raw_template: dict, template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup", {"HealthCheckPath": "/health", "TargetType": "ip"}
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Scheme": "internet-facing",
            "LoadBalancerAttributes": Match.array_with([{"Key": "access_logs.s3.enabled", "Value": "true"}]),
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 2, "MaxCapacity": 10}
    )
    metrics = {
        p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]
        for p in resources_of(raw_template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }
    assert metrics == {"ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"}


def test_three_lambdas_on_latest_python_with_powertools_layer(raw_template: dict) -> None:
    functions = resources_of(raw_template, "AWS::Lambda::Function")
    handlers = {f["Properties"]["Handler"] for f in functions.values()}
    assert handlers == {"scaler.handler.handler", "submitter.handler.handler", "task_events.handler.handler"}
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        layer = str(props["Layers"][0])
        assert "AWSLambdaPowertoolsPythonV3-python314-arm64" in layer


def test_submitter_reads_partial_batch_responses(template: Template) -> None:
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping", {"FunctionResponseTypes": ["ReportBatchItemFailures"], "BatchSize": 10}
    )


def test_event_rules_for_alarm_changes_task_changes_and_schedules(raw_template: dict) -> None:
    rules = resources_of(raw_template, "AWS::Events::Rule").values()
    patterns = [r["Properties"].get("EventPattern", {}) for r in rules]
    assert any(p.get("detail-type") == ["CloudWatch Alarm State Change"] for p in patterns)
    task_rules = [p for p in patterns if p.get("detail-type") == ["ECS Task State Change"]]
    assert len(task_rules) == 1 and "clusterArn" in task_rules[0]["detail"]
    assert sum("ScheduleExpression" in r["Properties"] for r in rules) == 2
    for rule in rules:
        for target in rule["Properties"]["Targets"]:
            assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] >= 4


def test_alarms_on_backlog_oldest_message_dlqs_failures_and_serving(raw_template: dict) -> None:
    metrics = [a["Properties"].get("MetricName") for a in resources_of(raw_template, "AWS::CloudWatch::Alarm").values()]
    assert metrics.count("ApproximateNumberOfMessagesVisible") == 3  # backlog + two DLQs
    assert metrics.count("ApproximateAgeOfOldestMessage") == 2
    assert {"JobsFailed", "HTTPCode_Target_5XX_Count", "TargetResponseTime"} <= set(metrics)
    # Every alarm but the backlog one (a scaling trigger, not a page) notifies the SNS topic.
    silent = [
        a
        for a in resources_of(raw_template, "AWS::CloudWatch::Alarm").values()
        if "AlarmActions" not in a["Properties"]
    ]
    assert len(silent) == 1 and silent[0]["Properties"]["Threshold"] == 1


def test_no_iam_statement_allows_wildcard_actions(raw_template: dict) -> None:
    for policy in resources_of(raw_template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any(action == "*" or action.endswith(":*") for action in actions), statement


def test_run_task_and_pass_role_are_scoped(raw_template: dict) -> None:
    statements = [
        s
        for p in resources_of(raw_template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    run_task = [s for s in statements if s["Action"] == "ecs:RunTask"]
    assert len(run_task) == 1
    resources = run_task[0]["Resource"]
    assert all("TrainingTasks" in json.dumps(r) for r in (resources if isinstance(resources, list) else [resources]))
    assert "ecs:cluster" in run_task[0]["Condition"]["ArnEquals"]
    pass_role = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert len(pass_role) == 1 and "*" not in str(pass_role[0]["Resource"])
    update_service = [s for s in statements if "ecs:UpdateService" in s["Action"]]
    assert len(update_service) == 1 and "*" not in json.dumps(update_service[0]["Resource"])


def test_stack_outputs_what_users_need(raw_template: dict) -> None:
    assert {
        "WorkerQueueUrl",
        "DispatchQueueUrl",
        "WorkerDlqUrl",
        "DispatchDlqUrl",
        "JobsTableName",
        "ClusterName",
        "WorkerServiceName",
        "TrainingLogGroupName",
        "WorkerLogGroupName",
        "ServingUrl",
        "ArtifactsBucketName",
    } <= set(raw_template["Outputs"])


def test_gpu_capacity_provider_is_spot_capacity_optimized_with_managed_scaling(gpu_template: Template) -> None:
    gpu_template.has_resource_properties(
        "AWS::ECS::CapacityProvider",
        {
            "AutoScalingGroupProvider": Match.object_like(
                {"ManagedScaling": Match.object_like({"Status": "ENABLED"}), "ManagedTerminationProtection": "ENABLED"}
            )
        },
    )
    gpu_template.has_resource_properties(
        "AWS::AutoScaling::AutoScalingGroup",
        {
            "MinSize": "0",
            "MixedInstancesPolicy": Match.object_like(
                {
                    "InstancesDistribution": {
                        "OnDemandBaseCapacity": 0,
                        "OnDemandPercentageAboveBaseCapacity": 0,
                        "SpotAllocationStrategy": "capacity-optimized",
                    }
                }
            ),
        },
    )
    gpu_template.resource_count_is("AWS::AutoScaling::LaunchConfiguration", 0)
