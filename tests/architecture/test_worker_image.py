"""The worker image gets the runtime packages the worker imports, the same folders the Lambda asset ships."""

from __future__ import annotations

import re

from cdk_app.images import WORKER_RUNTIME
from tests.architecture.test_imports import LAMBDAS, REPO, imported_modules

WORKER = REPO / "worker"


def test_dockerfile_dockerignore_and_cdk_asset_carry_the_same_runtime() -> None:
    copied = re.findall(r"^COPY lambdas/(\S+) /app/\S+$", (WORKER / "Dockerfile").read_text(), flags=re.M)
    unignored = re.findall(r"^!lambdas/(\S+)$", (WORKER / "Dockerfile.dockerignore").read_text(), flags=re.M)
    assert sorted(copied) == sorted(unignored) == sorted(WORKER_RUNTIME)


def test_the_image_has_every_runtime_package_the_worker_imports() -> None:
    shipped = {name.removesuffix(".py") for name in WORKER_RUNTIME}
    runtime = {
        p.name.removesuffix(".py") for p in LAMBDAS.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    needed = {
        name.split(".")[0]
        for path in WORKER.rglob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] in runtime
    }
    assert needed and needed <= shipped
