"""The local template and the played parts: derived from the synthesized template, nothing resolved by hand."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from local.cloud import Alarm, _played, dockerfile_cmd
from local.control import Pace
from local.template import PLAYED_LOCALLY, expressions_as_outputs, fill_outputs, local_template, references

SNAPSHOT = Path(__file__).resolve().parents[1] / "infra" / "snapshots" / "TrainingAutoscaler.template.json"


@pytest.fixture(scope="module")
def template() -> dict:
    return json.loads(SNAPSHOT.read_text())


def test_played_resources_and_their_dependents_are_left_out(template: dict) -> None:
    local = local_template(template)
    kept = local["Resources"]
    assert not {r["Type"] for r in kept.values()} & PLAYED_LOCALLY
    for name, resource in kept.items():
        assert references(resource) <= set(kept), f"{name} refers to a resource that is not deployed"
    for output in local["Outputs"].values():
        assert references(output) <= set(kept)
    assert "Rules" not in local and "BootstrapVersion" not in local.get("Parameters", {})


def test_every_queue_table_cluster_and_service_is_deployed(template: dict) -> None:
    kept = local_template(template)["Resources"]
    for kind in (
        "AWS::SQS::Queue",
        "AWS::ECS::Cluster",
        "AWS::ECS::Service",
        "AWS::ECS::TaskDefinition",
        "AWS::S3::Bucket",
    ):
        wanted = {n for n, r in template["Resources"].items() if r["Type"] == kind}
        assert wanted and wanted <= set(kept), kind
    assert {"WorkerQueueUrl", "DispatchQueueUrl", "JobsTableName", "ClusterName", "WorkerServiceName"} <= set(
        local_template(template)["Outputs"]
    )


def test_global_table_becomes_a_table_with_the_same_keys_and_indexes(template: dict) -> None:
    (name,) = [n for n, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::GlobalTable"]
    original = template["Resources"][name]["Properties"]
    table = local_template(template)["Resources"][name]
    assert table["Type"] == "AWS::DynamoDB::Table"
    for key in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes"):
        assert table["Properties"][key] == original[key]


def test_the_input_template_is_not_modified(template: dict) -> None:
    before = copy.deepcopy(template)
    local_template(template)
    assert template == before


def test_references_cover_ref_getatt_and_sub() -> None:
    node = {
        "A": {"Ref": "Queue"},
        "B": {"Fn::GetAtt": ["Table", "Arn"]},
        "C": {"Fn::Sub": "arn:${AWS::Partition}:x:${Bucket.Arn}/${!Literal}"},
        "D": {"Fn::Sub": ["${X}-${Name}", {"Name": {"Ref": "Topic"}}]},
        "E": {"Ref": "AWS::Region"},
    }
    assert references(node) == {"Queue", "Table", "Bucket", "X", "Topic"}


def test_expressions_round_trip_through_outputs() -> None:
    outputs: dict = {}
    node = {"url": {"Ref": "Queue"}, "plain": "x", "list": [{"Fn::GetAtt": ["Q", "QueueName"]}, 3]}
    placeholders = expressions_as_outputs(node, outputs, "P")
    assert outputs == {"P0": {"Value": {"Ref": "Queue"}}, "P1": {"Value": {"Fn::GetAtt": ["Q", "QueueName"]}}}
    assert fill_outputs(placeholders, {"P0": "https://q", "P1": "q"}) == {
        "url": "https://q",
        "plain": "x",
        "list": ["q", 3],
    }


def test_played_parts_come_from_the_template(template: dict) -> None:
    played = _played(template)
    handlers = {f["handler"] for f in played["functions"].values()}
    assert handlers == {"scaler.handler.handler", "submitter.handler.handler", "task_events.handler.handler"}
    schedules = [r for r in played["rules"] if r["schedule"]]
    assert {r["schedule"] for r in schedules} == {"rate(1 minute)"}
    backlog = [a for a in played["alarms"] if "Backlog" in a["name"]]
    assert backlog and backlog[0]["metric"] == "ApproximateNumberOfMessagesVisible"
    # the rule that feeds the scaler names the backlog alarm by the ARN local mode gives it
    scaler_rules = [
        r for r in played["rules"] if r["pattern"] and "CloudWatch Alarm State Change" in json.dumps(r["pattern"])
    ]
    assert backlog[0]["arn"] == scaler_rules[0]["pattern"]["resources"][0]
    (source,) = played["sources"]
    assert source["report_item_failures"] and source["batch_size"] == 10
    (strategy,) = played["strategies"]
    assert {s["CapacityProvider"] for s in strategy["strategy"]} == {"FARGATE", "FARGATE_SPOT"}


def test_dockerfile_cmd_reads_the_last_exec_form() -> None:
    assert dockerfile_cmd('FROM x\nCMD ["a"]\nRUN y\nCMD ["python", "-m", "worker"]\n') == ["python", "-m", "worker"]
    assert dockerfile_cmd((Path(__file__).resolve().parents[2] / "worker" / "Dockerfile").read_text())[1:] == [
        "-m",
        "worker",
    ]
    with pytest.raises(ValueError, match="no exec-form CMD"):
        dockerfile_cmd("FROM x\nCMD python -m worker\n")


def test_alarm_comparisons() -> None:
    alarm = Alarm("a", "arn", "ApproximateNumberOfMessagesVisible", "q", 1, "GreaterThanOrEqualToThreshold", 60, "")
    assert alarm.breaching(1) and not alarm.breaching(0)


def test_schedules_are_scaled_and_unknown_expressions_are_refused() -> None:
    pace = Pace(minute_s=2.0)
    assert pace.schedule_period("rate(1 minute)") == 2.0
    assert pace.schedule_period("rate(2 hours)") == 240.0
    with pytest.raises(ValueError, match="rate"):
        pace.schedule_period("cron(0 12 * * ? *)")
