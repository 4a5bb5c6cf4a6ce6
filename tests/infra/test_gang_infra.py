"""Infrastructure for distributed jobs: ranks reach each other on the rendezvous port range only, frameworks'
peer ports stay in that range, ranks may touch only the rendezvous attributes of the jobs table."""

from __future__ import annotations

import json

import pytest

from cdk_app.config import AppConfig, ConfigError
from contracts import EPHEMERAL_PORTS, RENDEZVOUS_ATTRIBUTES, RENDEZVOUS_PORTS
from jobs import gang
from tests.infra.conftest import resources_of


def test_infra_and_runtime_agree_on_the_ports() -> None:
    low, high = (int(p) for p in EPHEMERAL_PORTS.split())
    assert RENDEZVOUS_PORTS[0] <= gang.MASTER_PORTS.start < gang.MASTER_PORTS.stop <= low < high <= RENDEZVOUS_PORTS[1]


def test_task_security_group_admits_only_its_own_tasks_on_the_rendezvous_range(raw_template: dict) -> None:
    groups = {
        k: v for k, v in resources_of(raw_template, "AWS::EC2::SecurityGroup").items() if "TaskSecurityGroup" in k
    }
    ((group_id, group),) = groups.items()
    assert "SecurityGroupIngress" not in group["Properties"]
    rules = [
        r["Properties"]
        for r in resources_of(raw_template, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    assert rules == [
        {
            "IpProtocol": "tcp",
            "FromPort": RENDEZVOUS_PORTS[0],
            "ToPort": RENDEZVOUS_PORTS[1],
            "GroupId": {"Fn::GetAtt": [group_id, "GroupId"]},
            "SourceSecurityGroupId": {"Fn::GetAtt": [group_id, "GroupId"]},
            "Description": rules[0]["Description"],
        }
    ]


def test_training_containers_keep_peer_ports_in_the_range(raw_template: dict) -> None:
    trainers = [
        c
        for d in resources_of(raw_template, "AWS::ECS::TaskDefinition").values()
        for c in d["Properties"]["ContainerDefinitions"]
        if c["Name"] == "trainer"
    ]
    assert trainers
    for trainer in trainers:
        assert trainer["SystemControls"] == [{"Namespace": "net.ipv4.ip_local_port_range", "Value": EPHEMERAL_PORTS}]


def test_ranks_may_only_read_and_write_the_rendezvous_attributes(raw_template: dict) -> None:
    statements = [
        s
        for p in resources_of(raw_template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "dynamodb:Attributes" in json.dumps(s)
    ]
    (statement,) = statements
    assert statement["Action"] == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"] == list(RENDEZVOUS_ATTRIBUTES)
    assert gang.RENDEZVOUS in RENDEZVOUS_ATTRIBUTES


def test_the_submitter_knows_the_most_ranks_a_job_may_ask_for(raw_template: dict) -> None:
    (submitter,) = [f for k, f in resources_of(raw_template, "AWS::Lambda::Function").items() if "Submitter" in k]
    assert submitter["Properties"]["Environment"]["Variables"]["MAX_NODES"] == "8"


def test_max_nodes_is_bounded_by_the_concurrency_cap() -> None:
    assert AppConfig().max_nodes == 8
    for bad in ({"max_nodes": 0}, {"max_nodes": 65}, {"max_nodes": 9, "max_concurrent_tasks": 8}):
        with pytest.raises(ConfigError, match="max_nodes"):
            AppConfig(**bad)  # type: ignore[arg-type]
