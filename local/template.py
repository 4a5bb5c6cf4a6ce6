"""Derive the local template: the synthesized stack minus what moto's CloudFormation cannot create.

The rest of the stack (queues, jobs table, cluster, task definitions, services, buckets, roles...) is
created by moto from this derived template, so local mode runs the very resources ``cdk deploy`` creates.
What is left out is *played* by the local control plane from the original template: the alarms, the
EventBridge rules and the SQS event source (routed to the real handlers), and the cluster's default
capacity-provider strategy. ``expressions_as_outputs`` lets moto resolve the intrinsic functions in those
parts (queue names, ARNs, the Lambdas' environment) so nothing is resolved by hand.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

# Played by the control plane or the local processes; moto 5.2's CloudFormation cannot create them.
PLAYED_LOCALLY = frozenset(
    {
        "AWS::Lambda::Function",  # the handlers run as local processes
        "AWS::Lambda::Permission",
        "AWS::Lambda::EventSourceMapping",  # the control plane polls the queue
        "AWS::Events::Rule",  # the control plane routes events to the handlers
        "AWS::CloudWatch::Alarm",  # the control plane evaluates them on live queue attributes
        "AWS::ECS::ClusterCapacityProviderAssociations",  # the control plane applies the strategy
        "AWS::ECS::CapacityProvider",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::AutoScaling::LifecycleHook",
        "AWS::EC2::SecurityGroupEgress",
        "AWS::SNS::Subscription",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::S3::BucketPolicy",
    }
)


def local_template(template: dict[str, Any]) -> dict[str, Any]:
    """The deployable part of ``template``: played resources and everything referring to them removed."""
    local = copy.deepcopy(template)
    local.pop("Rules", None)  # the CDK bootstrap-version check: local mode is not bootstrapped
    local.get("Parameters", {}).pop("BootstrapVersion", None)
    resources: dict[str, Any] = local["Resources"]
    for resource in resources.values():
        if resource["Type"] == "AWS::DynamoDB::GlobalTable":
            _as_table(resource)
        elif resource["Type"] == "AWS::KMS::Key":
            resource["Properties"].pop("Tags", None)  # moto 5.2 reads KMS tags as TagKey/TagValue and fails
    dropped = {name for name, resource in resources.items() if resource["Type"] in PLAYED_LOCALLY}
    while True:  # anything that refers to a dropped resource goes too, until nothing changes
        more = {name for name, r in resources.items() if name not in dropped and references(r) & dropped}
        if not more:
            break
        dropped |= more
    for name in dropped:
        del resources[name]
    for resource in resources.values():
        depends = resource.get("DependsOn")
        if depends:
            kept = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in dropped]
            resource["DependsOn"] = kept
            if not kept:
                del resource["DependsOn"]
    local["Outputs"] = {
        name: output for name, output in local.get("Outputs", {}).items() if not references(output) & dropped
    }
    return local


def _as_table(resource: dict[str, Any]) -> None:
    """AWS::DynamoDB::GlobalTable (CDK's TableV2) -> AWS::DynamoDB::Table with the same keys and indexes."""
    props = resource["Properties"]
    keep = ("AttributeDefinitions", "KeySchema", "BillingMode", "GlobalSecondaryIndexes")
    resource["Type"] = "AWS::DynamoDB::Table"
    resource["Properties"] = {key: props[key] for key in keep if key in props}


def references(node: Any) -> set[str]:
    """Logical ids that ``node`` refers to through Ref, Fn::GetAtt or Fn::Sub."""
    return set(_references(node))


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str) and not value.startswith("AWS::"):
                yield value
            elif key == "Fn::GetAtt":
                yield value[0] if isinstance(value, list) else value.split(".", 1)[0]
            elif key == "Fn::Sub":
                text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
                for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    if not name.startswith("AWS::") and name not in variables:
                        yield name.split(".", 1)[0]
                if isinstance(value, list):
                    yield from _references(value[1])
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def is_intrinsic(node: Any) -> bool:
    return (
        isinstance(node, dict) and len(node) == 1 and (next(iter(node)) == "Ref" or next(iter(node)).startswith("Fn::"))
    )


def expressions_as_outputs(node: Any, outputs: dict[str, Any], prefix: str) -> Any:
    """A copy of ``node`` whose intrinsic leaves are replaced by ``{"Output": name}`` placeholders.

    Each expression is added to ``outputs`` (CloudFormation outputs of the local template), so moto
    resolves it; ``fill_outputs`` later swaps the placeholders for the resolved values.
    """
    if is_intrinsic(node):
        name = f"{prefix}{len(outputs)}"
        outputs[name] = {"Value": node}
        return {"Output": name}
    if isinstance(node, dict):
        return {key: expressions_as_outputs(value, outputs, prefix) for key, value in node.items()}
    if isinstance(node, list):
        return [expressions_as_outputs(item, outputs, prefix) for item in node]
    return node


def fill_outputs(node: Any, values: dict[str, str]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Output"}:
            return values[node["Output"]]
        return {key: fill_outputs(value, values) for key, value in node.items()}
    if isinstance(node, list):
        return [fill_outputs(item, values) for item in node]
    return node
