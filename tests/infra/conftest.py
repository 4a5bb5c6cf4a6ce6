"""One synthesized app per session (synth costs seconds): tests read templates, never re-synthesize."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from app import STACK_NAME, build_app


def _synth(outdir: Path, overrides: dict[str, object] | None = None) -> tuple[App, Template, dict]:
    app = build_app(outdir=str(outdir), overrides=overrides)
    assembly = app.synth()
    stack = app.node.find_child(STACK_NAME)
    template = Template.from_stack(stack)  # type: ignore[arg-type]
    raw = json.loads(Path(assembly.directory, f"{STACK_NAME}.template.json").read_text())
    return app, template, raw


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[App, Template, dict, Path]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, template, raw = _synth(outdir)
    return app, template, raw, outdir


@pytest.fixture(scope="session")
def template(synthesized: tuple[App, Template, dict, Path]) -> Template:
    return synthesized[1]


@pytest.fixture(scope="session")
def raw_template(synthesized: tuple[App, Template, dict, Path]) -> dict:
    return synthesized[2]


@pytest.fixture(scope="session")
def template_path(synthesized: tuple[App, Template, dict, Path]) -> Path:
    return synthesized[3] / f"{STACK_NAME}.template.json"


@pytest.fixture(scope="session")
def gpu_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    _, template, _ = _synth(tmp_path_factory.mktemp("cdk.out.gpu"), {"autoscaler.gpu_enabled": True})
    return template


def resources_of(raw: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == resource_type}
