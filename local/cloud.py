"""The local cloud: synthesize the stack, start moto on 127.0.0.1, deploy what moto can create, and resolve
what the control plane plays (functions, event rules, the SQS event source, alarms, strategies).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.functions import FunctionSpec
from local.template import PLAYED_LOCALLY, expressions_as_outputs, fill_outputs, local_template, references

STACK_NAME = "TrainingAutoscaler"
PLAY_PREFIX = "LocalPlay"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@dataclass(frozen=True)
class Rule:
    """An EventBridge rule of the stack: a pattern or a schedule, and the function it targets."""

    name: str
    function: str
    pattern: Mapping[str, Any] | None
    schedule: str | None


@dataclass(frozen=True)
class EventSource:
    """An SQS event source mapping of the stack."""

    function: str
    queue_url: str
    batch_size: int
    report_item_failures: bool


@dataclass(frozen=True)
class Alarm:
    """An alarm on an SQS queue metric, evaluated on live queue attributes (moto publishes no SQS metrics)."""

    name: str
    arn: str
    metric: str
    queue_name: str
    threshold: float
    comparison: str
    period_s: float
    description: str

    def breaching(self, value: float) -> bool:
        compare = {
            "GreaterThanOrEqualToThreshold": value >= self.threshold,
            "GreaterThanThreshold": value > self.threshold,
            "LessThanThreshold": value < self.threshold,
            "LessThanOrEqualToThreshold": value <= self.threshold,
        }
        return compare[self.comparison]


@dataclass(frozen=True)
class Plays:
    """Everything the control plane plays, resolved against the deployed stack."""

    outputs: Mapping[str, str]
    functions: Mapping[str, FunctionSpec]
    rules: tuple[Rule, ...]
    sources: tuple[EventSource, ...]
    alarms: tuple[Alarm, ...]
    service_strategies: Mapping[str, list[dict[str, Any]]]  # service name -> capacity provider strategy
    images: Mapping[str, list[str]]  # image tag -> the command its Dockerfile runs (CMD)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _played(template: dict[str, Any]) -> dict[str, Any]:
    """The parts of the template the control plane plays, with intrinsic functions still unresolved."""
    resources = template["Resources"]
    played = {name for name, r in resources.items() if r["Type"] in PLAYED_LOCALLY}

    def of_type(kind: str) -> dict[str, dict[str, Any]]:
        return {name: r.get("Properties", {}) for name, r in resources.items() if r["Type"] == kind}

    def alarm_arn(name: str) -> dict[str, Any]:
        return {"Fn::Sub": f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{name}"}

    def deployable(node: Any) -> Any:
        """References to played resources replaced by what they stand for locally."""
        if isinstance(node, dict) and set(node) == {"Fn::GetAtt"} and node["Fn::GetAtt"][0] in played:
            name, attribute = node["Fn::GetAtt"]
            if resources[name]["Type"] == "AWS::CloudWatch::Alarm" and attribute == "Arn":
                return alarm_arn(name)
            raise ValueError(f"local mode cannot resolve {name}.{attribute}")
        if isinstance(node, dict):
            return {key: deployable(value) for key, value in node.items()}
        if isinstance(node, list):
            return [deployable(item) for item in node]
        return node

    functions = {
        name: {
            "handler": props["Handler"],
            "environment": props.get("Environment", {}).get("Variables", {}),
            "timeout": props.get("Timeout", 3),
            "memory": props.get("MemorySize", 128),
        }
        for name, props in of_type("AWS::Lambda::Function").items()
    }
    rules = [
        {
            "name": name,
            "function": target["Arn"]["Fn::GetAtt"][0],
            **{"pattern": deployable(props.get("EventPattern")), "schedule": props.get("ScheduleExpression")},
        }
        for name, props in of_type("AWS::Events::Rule").items()
        for target in props.get("Targets", [])
        if target["Arn"].get("Fn::GetAtt", [""])[0] in functions
    ]
    sources = [
        {
            "function": props["FunctionName"]["Ref"],
            "queue_url": {"Ref": props["EventSourceArn"]["Fn::GetAtt"][0]},
            "batch_size": props.get("BatchSize", 10),
            "report_item_failures": "ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        }
        for props in of_type("AWS::Lambda::EventSourceMapping").values()
    ]
    alarms = [
        {
            "name": name,
            "arn": alarm_arn(name),
            "metric": props["MetricName"],
            "queue_name": next(d["Value"] for d in props["Dimensions"] if d["Name"] == "QueueName"),
            "threshold": props["Threshold"],
            "comparison": props["ComparisonOperator"],
            "period_s": props.get("Period", 60),
            "description": props.get("AlarmDescription", ""),
        }
        for name, props in of_type("AWS::CloudWatch::Alarm").items()
        if props.get("Namespace") == "AWS/SQS"  # the others need metrics moto does not publish
    ]
    strategies = [
        {"service": {"Fn::GetAtt": [name, "Name"]}, "strategy": props["CapacityProviderStrategy"]}
        for name, props in of_type("AWS::ECS::Service").items()
        if "CapacityProviderStrategy" in props
    ]
    return {
        "functions": deployable(functions),
        "rules": rules,
        "sources": sources,
        "alarms": deployable(alarms),
        "strategies": strategies,
    }


def deploy(endpoint: str, region: str, cloud_assembly: Path) -> Plays:
    """Create the stack in moto from the synthesized template; resolve the played parts through its outputs."""
    import boto3

    template = json.loads((cloud_assembly / f"{STACK_NAME}.template.json").read_text())
    local = local_template(template)
    outputs: dict[str, Any] = {}
    played = expressions_as_outputs(_played(template), outputs, PLAY_PREFIX)
    dropped = set(template["Resources"]) - set(local["Resources"])
    unresolvable = {name for name, output in outputs.items() if references(output) & dropped}
    if unresolvable:
        raise ValueError(f"played parts refer to resources moto cannot create: {sorted(unresolvable)}")
    local["Outputs"].update(outputs)
    cloudformation = boto3.client("cloudformation", endpoint_url=endpoint, region_name=region)
    cloudformation.create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(local), Capabilities=["CAPABILITY_IAM"])
    stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"local stack: {stack['StackStatus']} {stack.get('StackStatusReason', '')}")
    created = {
        r["LogicalResourceId"] for r in cloudformation.describe_stack_resources(StackName=STACK_NAME)["StackResources"]
    }
    missing = sorted(set(local["Resources"]) - created)
    if missing:  # moto skips types it does not know: fail here rather than run without them
        raise RuntimeError(f"moto did not create {len(missing)} resources of the local template: {missing}")
    values = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    resolved = fill_outputs(played, values)
    return Plays(
        outputs={k: v for k, v in values.items() if not k.startswith(PLAY_PREFIX)},
        functions={
            name: FunctionSpec(name, f["handler"], f["environment"], float(f["timeout"]), int(f["memory"]))
            for name, f in resolved["functions"].items()
        },
        rules=tuple(Rule(**rule) for rule in resolved["rules"]),
        sources=tuple(EventSource(**source) for source in resolved["sources"]),
        alarms=tuple(Alarm(**alarm) for alarm in resolved["alarms"]),
        service_strategies={s["service"]: s["strategy"] for s in resolved["strategies"]},
        images=image_commands(cloud_assembly),
    )


def image_commands(cloud_assembly: Path) -> dict[str, list[str]]:
    """Image tag -> its Dockerfile's CMD, from the assembly's asset manifest (what the image would run)."""
    manifest = json.loads((cloud_assembly / f"{STACK_NAME}.assets.json").read_text())
    commands = {}
    for tag, asset in manifest.get("dockerImages", {}).items():
        source = asset["source"]
        dockerfile = cloud_assembly / source["directory"] / source.get("dockerFile", "Dockerfile")
        commands[tag] = dockerfile_cmd(dockerfile.read_text())
    return commands


def dockerfile_cmd(dockerfile: str) -> list[str]:
    """The last exec-form ``CMD [...]`` of a Dockerfile."""
    found = re.findall(r"^CMD\s+(\[.*\])\s*$", dockerfile, flags=re.MULTILINE)
    if not found:
        raise ValueError("the Dockerfile has no exec-form CMD [...]")
    return list(json.loads(found[-1]))
