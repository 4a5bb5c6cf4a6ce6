"""Fixtures for the scaler's tests: dummy AWS credentials and Powertools environment, fresh
process caches for each test, the moto world, event payloads and the AWS call counter.
Helpers live in ``scaler_testkit`` (not importable as ``conftest``: other folders have one)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto import mock_aws
from scaler_testkit import (
    REGION,
    CallCounter,
    CurrentStdout,
    FakeLambdaContext,
    Scaler,
    World,
    alarm_event,
    build_world,
    nudge_event,
    scaler_environment,
    schedule_event,
)


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # Powertools reads these when scaler.handler is first imported (as in Lambda).
        "POWERTOOLS_SERVICE_NAME": "scaler",
        "POWERTOOLS_METRICS_NAMESPACE": "TrainingAutoscaler",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture(autouse=True)
def fresh_process_caches() -> Iterator[None]:
    """Settings, dependencies and clients are cached per process; each test is a cold start."""
    from scaler.wiring import reset

    reset()
    yield
    reset()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with mock_aws():
        built = build_world()
        for name, value in scaler_environment(built.queue_url).items():
            monkeypatch.setenv(name, value)
        yield built


@pytest.fixture(autouse=True)
def stdout(aws_environment: None, capsys: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """What the handler printed (log lines and EMF documents), read with ``stdout()``.

    The Powertools Logger keeps the stream it was created with (at first import, maybe
    inside another test's capture), so make it write to the current ``sys.stdout``."""
    from scaler.handler import logger

    stream_handler: Any = logger.registered_handler
    stream_handler.stream = CurrentStdout()
    return lambda: capsys.readouterr().out


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture(params=["alarm", "schedule", "nudge"])
def any_trigger(request: pytest.FixtureRequest) -> dict[str, Any]:
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "alarm": alarm_event,
        "schedule": schedule_event,
        "nudge": nudge_event,
    }
    return builders[request.param]()


@pytest.fixture
def events() -> Any:
    """The event builders, for tests that need a specific payload."""

    class Events:
        alarm = staticmethod(alarm_event)
        schedule = staticmethod(schedule_event)
        nudge = staticmethod(nudge_event)

    return Events


@pytest.fixture
def call_counter() -> CallCounter:
    return CallCounter()


@pytest.fixture
def scaler(world: World, lambda_context: FakeLambdaContext, call_counter: CallCounter) -> Scaler:
    return Scaler(context=lambda_context, counter=call_counter)
