"""The local control plane: plays the alarms, EventBridge rules and the SQS event source of the stack,
and runs the ECS emulator, each on its own thread, against moto over HTTP.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any

from local import events
from local.agent import AgentEndpoint
from local.cloud import Alarm, EventSource, Plays, Rule
from local.ecs import EcsEmulator, Timing
from local.functions import InvocationError, LocalFunction

# Queue attributes an alarm on these SQS metrics can be evaluated from (GetQueueAttributes is live; the
# CloudWatch metric lags it by minutes, docs/aws-facts.md §3).
ALARM_ATTRIBUTES = {
    "ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}
RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours)\)")


@dataclass(frozen=True)
class Pace:
    """How fast the local world runs: one template minute lasts ``minute_s`` real seconds."""

    minute_s: float = 3.0
    tick_s: float = 0.2
    timing: Timing = field(default_factory=Timing)

    def schedule_period(self, expression: str) -> float:
        match = RATE.fullmatch(expression)
        if not match:
            raise ValueError(f"local mode plays rate(N minutes|hours) schedules only, got {expression!r}")
        minutes = int(match[1]) * (60 if match[2].startswith("hour") else 1)
        return minutes * self.minute_s


class EventRouter:
    """EventBridge for the stack's rules: each event goes to every rule whose pattern matches, in order."""

    def __init__(self, rules: tuple[Rule, ...], functions: Mapping[str, LocalFunction], record: Callable[[str], None]):
        from moto.events.models import EventPattern  # moto's implementation of EventBridge pattern matching

        self.functions = functions
        self.record = record
        self.matchers = [(rule, EventPattern.load(_json(rule.pattern))) for rule in rules if rule.pattern]
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[tuple[Rule | None, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="eventbridge", daemon=True)
        self._thread.start()

    def put(self, event: dict[str, Any]) -> None:
        self._queue.put((None, event))

    def deliver(self, rule: Rule, event: dict[str, Any]) -> None:
        self._queue.put((rule, event))

    def drain(self) -> None:
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                rule, event = item
                targets = [rule] if rule else [r for r, pattern in self.matchers if pattern.matches_event(event)]  # type: ignore[arg-type]
                for target in targets:
                    self._invoke(target, event)
            finally:
                self._queue.task_done()

    def _invoke(self, rule: Rule, event: dict[str, Any]) -> None:
        for attempt in range(3):  # EventBridge retries a failed invocation (the template allows more)
            try:
                self.functions[rule.function].invoke(event)
                self.delivered += 1
                return
            except InvocationError as error:
                self.record(f"{rule.name}: attempt {attempt + 1} failed: {error}")
                time.sleep(0.5)
        self.failed += 1


class ControlPlane:
    """Starts the functions, the ECS agent endpoint, the emulator and the loops; ``close()`` stops them all."""

    def __init__(
        self,
        *,
        plays: Plays,
        endpoint: str,
        region: str,
        backend: Any,
        logs_dir: Path,
        pace: Pace,
        task_env: Mapping[str, str],
        aws_env: Mapping[str, str],
    ) -> None:
        import boto3

        self.plays = plays
        self.region = region
        self.pace = pace
        self.notes: list[str] = []
        self.alarm_changes: list[tuple[float, str, str]] = []
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._logs: list[IO[str]] = []
        logs_dir.mkdir(parents=True, exist_ok=True)
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=region)
        self.functions: dict[str, LocalFunction] = {}
        try:
            for name, spec in plays.functions.items():
                log = (logs_dir / f"lambda-{name}.log").open("a")
                self._logs.append(log)
                self.functions[name] = LocalFunction(spec, aws_env, log)
            self.router = EventRouter(plays.rules, self.functions, self.notes.append)
            self.agent = AgentEndpoint()
            self.ecs = EcsEmulator(
                ecs=boto3.client("ecs", endpoint_url=endpoint, region_name=region),
                logs=boto3.client("logs", endpoint_url=endpoint, region_name=region),
                backend=backend,
                cluster=plays.outputs["ClusterName"],
                service_strategies=plays.service_strategies,
                image_commands=plays.images,
                agent=self.agent,
                task_env={**aws_env, **task_env},
                emit=lambda detail: self.router.put(events.task_state_change(detail, region=region)),
                logs_dir=logs_dir,
                timing=pace.timing,
            )
        except BaseException:
            self.close()
            raise

    def start(self) -> None:
        self._loop("ecs", self.pace.tick_s, self.ecs.tick)
        self._loop("awslogs", 1.0, self.ecs.ship_logs)
        alarms = [a for a in self.plays.alarms if a.metric in ALARM_ATTRIBUTES]
        if alarms:
            period_s = min(a.period_s for a in alarms) / 60 * self.pace.minute_s
            self._loop("alarms", period_s, self._alarm_evaluator(alarms))
        for rule in self.plays.rules:
            if rule.schedule:
                self._loop(f"schedule-{rule.name}", self.pace.schedule_period(rule.schedule), partial(self._tick, rule))
        for source in self.plays.sources:
            self._loop(f"sqs-{source.function}", 0.0, self._event_source(source))

    def _tick(self, rule: Rule) -> None:
        self.router.deliver(rule, events.scheduled(rule.name, region=self.region))

    def _loop(self, name: str, period_s: float, step: Callable[[], None]) -> None:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    step()
                except Exception as error:
                    self.notes.append(f"{name}: {type(error).__name__}: {error}")
                self._stop.wait(period_s)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _alarm_evaluator(self, alarms: list[Alarm]) -> Callable[[], None]:
        urls = {a.queue_name: self.sqs.get_queue_url(QueueName=a.queue_name)["QueueUrl"] for a in alarms}
        states = {a.name: "INSUFFICIENT_DATA" for a in alarms}

        def evaluate() -> None:
            attributes = {
                name: self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                for name, url in urls.items()
            }
            for alarm in alarms:
                value = float(attributes[alarm.queue_name][ALARM_ATTRIBUTES[alarm.metric]])
                state = "ALARM" if alarm.breaching(value) else "OK"
                if state != states[alarm.name]:
                    reason = f"Threshold Crossed: {alarm.metric} = {value:g} (threshold {alarm.threshold:g})"
                    self.router.put(
                        events.alarm_state_change(
                            alarm.name,
                            alarm.arn,
                            state=state,
                            previous=states[alarm.name],
                            reason=reason,
                            region=self.region,
                        )
                    )
                    self.alarm_changes.append((time.monotonic() - self.started, alarm.name, state))
                    states[alarm.name] = state

        return evaluate

    def _event_source(self, source: EventSource) -> Callable[[], None]:
        """Lambda's SQS poller: long-poll, invoke with the batch, delete what succeeded."""
        arn = self.sqs.get_queue_attributes(QueueUrl=source.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        function = self.functions[source.function]

        def poll() -> None:
            messages = self.sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(source.batch_size, 10),
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return
            try:
                result = function.invoke(events.sqs_batch(messages, queue_arn=arn, region=self.region))
            except InvocationError as error:  # the whole batch returns to the queue after its visibility timeout
                self.notes.append(str(error))
                return
            failed = (
                {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
                if source.report_item_failures
                else set()
            )
            done = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages)
                if m["MessageId"] not in failed
            ]
            if done:
                self.sqs.delete_message_batch(QueueUrl=source.queue_url, Entries=done)

        return poll

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if hasattr(self, "ecs"):
            self.ecs.shutdown()
            with contextlib.suppress(Exception):  # best effort: the logs stay in their files anyway
                self.ecs.ship_logs()
        if hasattr(self, "router"):
            self.router.close()
        if hasattr(self, "agent"):
            self.agent.close()
        for function in self.functions.values():
            function.close()
        for log in self._logs:
            log.close()


def _json(node: Any) -> str:
    import json

    return json.dumps(node)
