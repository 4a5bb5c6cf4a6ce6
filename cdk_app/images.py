"""Container images from config: a registry URI, or the project's own Dockerfiles built as CDK assets.

Synth only stages the build context; the image is built and pushed by `cdk deploy`.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs

from cdk_app.config import ASSET_PREFIX
from cdk_app.nag import acknowledge_wildcard

REPO_ROOT = Path(__file__).resolve().parent.parent

# The worker image carries the runtime packages the Lambdas run (WORKER_RUNTIME, from lambdas/); build it from
# the repo root but send Docker only what it needs (Docker ignore syntax; worker/Dockerfile.dockerignore matches).
WORKER_RUNTIME = ("jobs", "lifecycle", "aws", "contracts.py")
_WORKER_CONTEXT_EXCLUDES = [
    "*",
    "!worker",
    "!lambdas",
    "lambdas/*",
    *(f"!lambdas/{name}" for name in WORKER_RUNTIME),
    "**/__pycache__",
]


def container_image(spec: str) -> ecs.ContainerImage:
    """`asset:worker`, `asset:serving`, or any registry image URI."""
    if not spec.startswith(ASSET_PREFIX):
        return ecs.ContainerImage.from_registry(spec)
    name = spec[len(ASSET_PREFIX) :]
    if name == "worker":
        return ecs.ContainerImage.from_asset(
            str(REPO_ROOT),
            file="worker/Dockerfile",
            exclude=_WORKER_CONTEXT_EXCLUDES,
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
    return ecs.ContainerImage.from_asset(
        str(REPO_ROOT / name),
        exclude=["**/__pycache__"],
        platform=ecr_assets.Platform.LINUX_AMD64,
    )


def acknowledge_image_pull(definition: ecs.TaskDefinition) -> None:
    """An asset image's execution role needs ecr:GetAuthorizationToken, which has no resource scope."""
    if definition.execution_role is not None:
        acknowledge_wildcard(
            definition.execution_role,
            "*",
            "ecr:GetAuthorizationToken has no resource-level permission; image pulls are scoped to the repository.",
        )
