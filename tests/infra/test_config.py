"""AppConfig: defaults are valid; every bad value fails with a message naming its key."""

from __future__ import annotations

import json
import re

import pytest

from cdk_app.config import AppConfig, ConfigError


def test_defaults_are_valid_and_visibility_covers_three_heartbeats() -> None:
    config = AppConfig()
    assert config.min_workers == 0
    assert config.queue_visibility_seconds == 3 * config.worker_heartbeat_seconds
    assert (config.worker_max_receive_count, config.dispatch_max_receive_count) == (30, 5)


def test_context_values_are_parsed_from_cli_strings() -> None:
    config = AppConfig.from_context(
        {"autoscaler.max_workers": "25", "autoscaler.gpu_enabled": "true", "other.key": "ignored"}
    )
    assert config.max_workers == 25
    assert config.gpu_enabled is True


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"autoscaler.max_wrokers": 3}, "autoscaler.max_wrokers: unknown setting"),
        ({"autoscaler.max_workers": "many"}, "autoscaler.max_workers: 'many' is not valid JSON"),
        ({"autoscaler.max_workers": 2.5}, "autoscaler.max_workers: expected a whole number"),
        ({"autoscaler.gpu_enabled": 1}, "autoscaler.gpu_enabled: expected true or false"),
        ({"autoscaler.min_workers": 5, "autoscaler.max_workers": 2}, "autoscaler.max_workers: must be >= max(1"),
        ({"autoscaler.worker_cpu": 300}, "autoscaler.worker_cpu: 300 is not a Fargate size"),
        ({"autoscaler.training_memory": 512}, "autoscaler.training_memory: 512 MiB does not fit 1024 cpu units"),
        ({"autoscaler.worker_stop_timeout_seconds": 300}, "autoscaler.worker_stop_timeout_seconds: must be 2..120"),
        ({"autoscaler.training_images": {"gpu": "x"}}, "autoscaler.training_images: must have a 'default' entry"),
        ({"autoscaler.serving_image": "asset:nope"}, "autoscaler.serving_image: asset images are"),
        ({"autoscaler.serving_min_tasks": 1}, "autoscaler.serving_min_tasks: must be >= 2"),
        ({"autoscaler.log_retention_days": 10}, "autoscaler.log_retention_days: must be one of"),
        (
            {"autoscaler.gpu_instance_types": "g5.xlarge"},
            "autoscaler.gpu_instance_types: 'g5.xlarge' is not valid JSON",
        ),
        ({"autoscaler.gpu_instance_types": [1]}, "autoscaler.gpu_instance_types: expected a list of strings"),
        ({"autoscaler.region": "mars"}, "autoscaler.region: must be an AWS region name"),
        ({"autoscaler.worker_max_receive_count": 0}, "autoscaler.worker_max_receive_count: must be 1..1000"),
        ({"autoscaler.dispatch_max_receive_count": 1001}, "autoscaler.dispatch_max_receive_count: must be 1..1000"),
        ({"autoscaler.max_receive_count": 5}, "autoscaler.max_receive_count: unknown setting"),
    ],
)
def test_bad_values_name_their_key(context: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        AppConfig.from_context(context)
    assert message in str(raised.value)


def test_build_app_exits_with_the_key_on_bad_config(tmp_path) -> None:
    from app import build_app

    with pytest.raises(SystemExit) as raised:
        build_app(outdir=str(tmp_path), overrides={"autoscaler.max_workers": -1})
    assert "Configuration error: autoscaler.max_workers" in str(raised.value.code)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("submitter_max_concurrency", 1, "must be 2..1000"),
        ("submitter_batch_size", 11, "must be 1..10"),
        ("submitter_batching_window_seconds", 301, "must be 0..300"),
    ],
)
def test_submitter_event_source_limits(key: str, value: int, message: str) -> None:
    with pytest.raises(ConfigError, match=f"{key}.*{message}"):
        AppConfig(**{key: value})


def test_price_table_defaults_and_overrides() -> None:
    config = AppConfig.from_context({})
    assert config.fargate_prices["us-east-1"]["FARGATE"] == {"vcpu_hour": 0.04048, "gb_hour": 0.004445}
    table = {
        "eu-west-1": {
            "FARGATE": {"vcpu_hour": 0.05, "gb_hour": 0.005},
            "FARGATE_SPOT": {"vcpu_hour": 0.015, "gb_hour": 0.0015},
        }
    }
    custom = AppConfig.from_context({"autoscaler.region": "eu-west-1", "autoscaler.fargate_prices": json.dumps(table)})
    assert custom.fargate_prices == table


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (
            {"autoscaler.region": "eu-west-1"},
            "autoscaler.fargate_prices: no prices for region eu-west-1 (have: us-east-1)",
        ),
        ({"autoscaler.fargate_prices": []}, "autoscaler.fargate_prices: expected an object"),
        (
            {"autoscaler.fargate_prices": {"us-east-1": {"FARGATE": {}}}},
            "us-east-1: needs exactly FARGATE and FARGATE_SPOT",
        ),
        (
            {"autoscaler.fargate_prices": {"us-east-1": {"FARGATE": {"vcpu_hour": 1}, "FARGATE_SPOT": {}}}},
            "us-east-1.FARGATE: needs vcpu_hour and gb_hour as numbers >= 0",
        ),
    ],
)
def test_bad_price_tables_name_the_key(context: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        AppConfig.from_context(context)
