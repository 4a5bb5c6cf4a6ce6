"""cdk-nag AwsSolutions checks, run on every synth; each acknowledgement is per resource with a reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

_PACK = "AwsSolutions"


def add_nag_checks(app: App) -> None:
    """Findings make synth fail; acknowledgements live next to the resource they concern."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept one cdk-nag finding on `scope` (and its children) for a stated, specific reason."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{_PACK}::{rule}", reason=reason))


def logical_ref(resource: IConstruct, attribute: str = "") -> str:
    """How cdk-nag names a Ref/GetAtt in a finding id, e.g. `<JobsTable10C8EDF6.Arn>`."""
    stack = Stack.of(resource)
    cfn = resource.node.default_child or resource
    logical_id = stack.resolve(stack.get_logical_id(cfn))  # type: ignore[arg-type]
    return f"<{logical_id}{'.' + attribute if attribute else ''}>"


def acknowledge_wildcard(scope: IConstruct, resource: str, reason: str) -> None:
    """Accept one IAM5 wildcard-resource finding on `scope`'s policy."""
    acknowledge(scope, f"AwsSolutions-IAM5[Resource::{resource}]", reason)
