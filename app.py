#!/usr/bin/env python3
"""CDK entry point: the only place that reads context or the environment."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import App, Environment

from cdk_app.config import PREFIX, AppConfig, ConfigError
from cdk_app.nag import add_nag_checks
from cdk_app.stack import TrainingAutoscalerStack

STACK_NAME = "TrainingAutoscaler"
CDK_JSON = Path(__file__).resolve().parent / "cdk.json"


def build_app(outdir: str = "cdk.out", overrides: Mapping[str, object] | None = None) -> App:
    """The app with its one stack.

    cdk.json's context is the base (so `python app.py` synthesizes exactly what the CLI does);
    `-c key=value` on the CLI overrides it, and `overrides` (used by tests and local mode) win last.
    """
    defaults = json.loads(CDK_JSON.read_text())["context"]
    app = App(outdir=outdir, context=defaults, post_cli_context=dict(overrides or {}))
    try:
        config = AppConfig.from_context(
            {key: value for key, value in app.node.get_all_context().items() if key.startswith(PREFIX)}
        )
    except ConfigError as error:
        sys.exit(f"Configuration error: {error}")
    # Region-bound (ALB access logging needs it) but account-agnostic: synth needs no credentials and
    # makes no lookups; the CLI supplies the account at deploy time.
    TrainingAutoscalerStack(
        app, STACK_NAME, config=config, env=Environment(region=config.region), description="ECS Training Autoscaler"
    )
    add_nag_checks(app)
    return app


if __name__ == "__main__":
    build_app().synth()
