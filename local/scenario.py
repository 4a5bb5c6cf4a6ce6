"""``make demo``: the whole event-driven system, locally, playing a scenario with ``trainctl``.

Synthesizes the stack, starts moto on 127.0.0.1, deploys the stack's resources into it, starts the
control plane, then submits a burst of example training jobs (plus one invalid and one dedicated job),
interrupts a busy Spot worker half-way, and waits until every job is terminal and the workers are back at 0.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws.job_store import decode_item
from local import gang
from local.cloud import CREDENTIALS, STACK_NAME, Plays, deploy, free_port
from local.control import ControlPlane, Pace
from local.functions import REPO

REGION = "us-east-1"
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "REJECTED"}
LOCAL_CONTEXT = {
    # Scaled down for a run of about a minute; everything else is the stack's own configuration (cdk.json).
    "autoscaler.scale_in_grace_seconds": 10,
    "autoscaler.max_workers": 4,
}
LOCAL_TASK_ENV = {"WORKER_WAIT_SECONDS": "2"}  # long-poll 2 s instead of 20 s, so scale-in stops idle workers fast
SWEEP_LEARNING_RATES = (0.5, 0.1, 0.02)


def sweep_job(step_seconds: float) -> dict[str, Any]:
    """A small hyper-parameter sweep of dedicated tasks (each child's cost is recorded in dollars)."""
    return {
        "job_id": "demo-sweep",
        "dedicated": True,
        "command": [
            *("python", "-m", "worker.example_train", "--steps", "60"),
            *("--step-seconds", str(step_seconds), "--learning-rate", "{{lr}}"),
        ],
        "sweep": {"grid": {"lr": list(SWEEP_LEARNING_RATES)}},
    }


INVALID_JOB = {
    "job_id": "demo-invalid",
    "command": ["python", "-m", "worker.example_train"],
    "cpu": 300,
    "colour": "blue",
}


class DemoFailed(RuntimeError):
    """The scenario did not reach its end state in time (the record says how far it got)."""


@dataclass
class Scenario:
    jobs: int = 8
    seed: int = 1
    timeout_s: float = 150.0
    interrupt_after_s: float = 1.0
    """A Spot worker is interrupted once it has been busy this long (its job has checkpointed)."""
    step_seconds: float = 0.04
    job_ids: list[str] = field(default_factory=list)
    interruption: dict[str, Any] = field(default_factory=dict)
    gang_interruption: dict[str, Any] = field(default_factory=dict)

    def job_steps(self) -> list[int]:
        rng = random.Random(self.seed)
        return [rng.randint(100, 200) for _ in range(self.jobs)]


def synthesize(out: Path) -> Path:
    """``make synth`` with the local context, into ``out/cdk.out``; the cdk-nag checks run as part of it."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from app import build_app

    assembly = out / "cdk.out"
    build_app(str(assembly), LOCAL_CONTEXT).synth()
    return assembly


def nag_result(assembly: Path) -> str:
    """The cdk-nag verdict from the assembly's validation report (a finding would have failed synth)."""
    report = json.loads((assembly / "validation-report.json").read_text())
    return "; ".join(
        f"cdk-nag {p['pluginName']}: {p['conclusion']}, {len(p['violations'])} findings, "
        f"{len(p.get('suppressedViolations', []))} acknowledged with reasons"
        for p in report["pluginReports"]
    )


def trainctl(endpoint: str, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": endpoint}
    result = subprocess.run(
        [sys.executable, "-m", "trainctl", *args],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise DemoFailed(f"trainctl {' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


class Observer:
    """Samples the system every half second over HTTP (queues, service, tasks, jobs) for progress and the plot."""

    def __init__(self, control: ControlPlane, plays: Plays, endpoint: str) -> None:
        import boto3

        self.control = control
        self.outputs = plays.outputs
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
        self.ecs = boto3.client("ecs", endpoint_url=endpoint, region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=REGION)
        self.samples: list[dict[str, Any]] = []
        self.latest_jobs: dict[str, dict[str, Any]] = {}
        """The job items of the last sample (job id -> item)."""
        self.max_desired = 0

    def jobs(self) -> dict[str, dict[str, Any]]:
        """Every job item of the table, decoded as the job store decodes them."""
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=self.outputs["JobsTableName"])
        items = [decode_item(item) for page in pages for item in page["Items"]]
        return {str(item["pk"]): item for item in items}

    def sample(self) -> dict[str, Any]:
        def depth(url: str) -> tuple[int, int]:
            a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

        service = self.ecs.describe_services(
            cluster=self.outputs["ClusterName"], services=[self.outputs["WorkerServiceName"]]
        )["services"][0]
        running, pending = self.control.ecs.service_counts(self.outputs["WorkerServiceName"])
        visible, in_flight = depth(self.outputs["WorkerQueueUrl"])
        dispatch_visible, _ = depth(self.outputs["DispatchQueueUrl"])
        self.latest_jobs = self.jobs()
        states = Counter(str(j["state"]) for j in self.latest_jobs.values())
        sample = {
            "t": round(time.monotonic() - self.control.started, 2),
            "worker_queue_visible": visible,
            "worker_queue_in_flight": in_flight,
            "dispatch_queue_visible": dispatch_visible,
            "desired": service["desiredCount"],
            # from the emulator: moto reports runningCount = desiredCount for a moment after each UpdateService
            "running": running,
            "pending": pending,
            "training_tasks": len(self.control.ecs.running(service=False)),
            "jobs": dict(states),
        }
        self.max_desired = max(self.max_desired, sample["desired"])
        self.samples.append(sample)
        return sample


def progress_line(s: dict[str, Any]) -> str:
    jobs = ", ".join(f"{n} {state}" for state, n in sorted(s["jobs"].items()))
    return (
        f"[{s['t']:6.1f}s] worker queue {s['worker_queue_visible']} waiting / {s['worker_queue_in_flight']} in flight"
        f" | workers desired {s['desired']} running {s['running']} pending {s['pending']}"
        f" | training tasks {s['training_tasks']} | jobs: {jobs or '-'}"
    )


def play(scenario: Scenario, observer: Observer, plays: Plays, endpoint: str, say: Callable[[str], None]) -> None:
    """Submit the jobs, inject the interruption, wait for the end state."""
    import boto3

    control = observer.control
    say(progress_line(observer.sample()))
    say(
        f"==> submitting {scenario.jobs} training jobs with trainctl (worker queue), 1 dedicated, "
        f"1 distributed ({gang.NODES} ranks), a {len(SWEEP_LEARNING_RATES)}-point sweep, 1 invalid"
    )
    command = "python -m worker.example_train --steps {steps} --step-seconds " + str(scenario.step_seconds)
    submits: list[tuple[str, ...]] = [
        ("--job-id", f"demo-{i + 1:02d}", "--command", command.format(steps=steps), "--max-attempts", "3")
        for i, steps in enumerate(scenario.job_steps())
    ]
    submits.append(("--job-id", "demo-dedicated", "--dedicated", "--command", command.format(steps=80)))
    submits.append(gang.submit_args(scenario.step_seconds))
    errors: list[str] = []

    def submit(args: tuple[str, ...]) -> None:
        try:
            trainctl(endpoint, "submit", *args)
        except DemoFailed as error:
            errors.append(str(error))

    def submit_sweep() -> None:
        try:
            trainctl(endpoint, "submit", "-", stdin=json.dumps(sweep_job(scenario.step_seconds)))
        except DemoFailed as error:
            errors.append(str(error))

    threads = [threading.Thread(target=submit, args=(a,)) for a in submits]
    threads.append(threading.Thread(target=submit_sweep))
    for thread in threads:
        thread.start()
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=REGION)
    sqs.send_message(QueueUrl=plays.outputs["DispatchQueueUrl"], MessageBody=json.dumps(INVALID_JOB))
    for thread in threads:
        thread.join()
    if errors:
        raise DemoFailed("; ".join(errors))
    sweep = ["demo-sweep", *(f"demo-sweep-{i}" for i in range(len(SWEEP_LEARNING_RATES)))]
    scenario.job_ids = [a[1] for a in submits] + sweep + [str(INVALID_JOB["job_id"])]
    say(f"    $ trainctl submit {shlex.join(submits[0])}   (and {len(submits) - 1} more)")
    say(f"    $ trainctl submit - <<< '{json.dumps(sweep_job(scenario.step_seconds))}'")
    say(f"    sent one invalid job straight to the dispatch queue: {json.dumps(INVALID_JOB)}")

    busy_since: dict[str, float] = {}
    deadline = time.monotonic() + scenario.timeout_s
    while True:
        sample = observer.sample()
        say(progress_line(sample))
        jobs = observer.latest_jobs
        now = round(time.monotonic() - control.started, 2)
        workers_interrupted = any(j.get("interruptions") for k, j in jobs.items() if k != gang.JOB_ID)
        unconfirmed = scenario.interruption and not workers_interrupted
        if unconfirmed and now - scenario.interruption["t"] > 5:  # its job had just ended: nothing was interrupted
            say("    (that worker had just finished its job; interrupting another one)")
            scenario.interruption = {}
        if not scenario.interruption:
            arn = _maybe_interrupt(control, busy_since, scenario.interrupt_after_s, say)
            if arn:
                scenario.interruption = {"t": now, "task_arn": arn}
        if not scenario.gang_interruption:
            scenario.gang_interruption = gang.maybe_interrupt(control, jobs.get(gang.JOB_ID), say)
        done = all(str(jobs.get(j, {}).get("state")) in TERMINAL for j in scenario.job_ids)
        if done and sample["desired"] == 0 and control.ecs.live_count() == 0 and observer.max_desired > 0:
            say(progress_line(observer.sample()))  # the end state, for the record and the plot
            return
        if time.monotonic() > deadline:
            raise DemoFailed(f"not finished after {scenario.timeout_s:.0f} s (last sample: {progress_line(sample)})")
        time.sleep(1.0)


def _maybe_interrupt(
    control: ControlPlane, busy_since: dict[str, float], after_s: float, say: Callable[[str], None]
) -> str | None:
    now = time.monotonic()
    for task in control.ecs.running(service=True, provider="FARGATE_SPOT"):
        if not control.agent.protected(task.task_id):
            busy_since.pop(task.task_id, None)
            continue
        if now - busy_since.setdefault(task.task_id, now) >= after_s and _checkpointed(task.log_path):
            say(
                f"==> Spot interruption: task {task.task_id[:8]} (busy worker on FARGATE_SPOT) gets SIGTERM + the event"
            )
            control.ecs.interrupt(task.arn)
            return task.arn
    return None


def _checkpointed(log: Path | None) -> bool:
    """The worker's current job has logged a checkpointed step (so an interruption has something to resume):
    under load a job may still be at step 0 after ``interrupt_after_s``."""
    text = log.read_text(errors="replace") if log and log.exists() else ""
    current = max(text.rfind(": starting at step"), text.rfind(": resumed from step"))
    return current >= 0 and "] step " in text[current:]


def run(scenario: Scenario, out: Path, say: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole demo; returns the run's record (also written to ``out/run.json``)."""
    from moto.moto_api import state_manager
    from moto.server import ThreadedMotoServer

    from local import report

    began = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's HTTP access log
    say("==> synthesizing the stack (cdk-nag AwsSolutions checks run during synth)")
    assembly = synthesize(out)
    say(f"    {assembly}/{STACK_NAME}.template.json; {nag_result(assembly)}")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    control: ControlPlane | None = None
    saved_env = {k: os.environ.get(k) for k in (*CREDENTIALS, "AWS_DEFAULT_REGION")}
    os.environ.update({**CREDENTIALS, "AWS_DEFAULT_REGION": REGION})
    try:
        server.start()
        # Task states are the emulator's to move; moto must not advance them on DescribeTasks.
        state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
        say(f"==> moto server on {endpoint}; deploying the stack's resources from the template")
        plays = deploy(endpoint, REGION, assembly)
        from moto.ecs.models import ecs_backends

        aws_env = {**CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": endpoint}
        control = ControlPlane(
            plays=plays,
            endpoint=endpoint,
            region=REGION,
            backend=ecs_backends["123456789012"][REGION],
            logs_dir=out / "logs",
            pace=Pace(),
            task_env=LOCAL_TASK_ENV,
            aws_env=aws_env,
        )
        control.start()
        say(
            f"    control plane: {len(plays.functions)} functions, {len(plays.rules)} rules, "
            f"{len(plays.alarms)} queue alarms, {len(plays.sources)} SQS event source"
        )
        observer = Observer(control, plays, endpoint)
        finished = False
        try:
            play(scenario, observer, plays, endpoint, say)
            finished = True
        finally:  # a failed run leaves its record too, to show how far it got
            wall_s = time.monotonic() - began
            record = report.record(scenario, plays, control, observer, wall_s=wall_s, finished=finished)
            report.write(record, out)
        control.ecs.ship_logs()
        interrupted = [j["job_id"] for j in record["jobs"] if j["interruptions"]]
        for args in (("list",), ("dlq", "list"), *((("logs", interrupted[0]),) if interrupted else ())):
            say(f"\n$ trainctl {' '.join(args)}\n{trainctl(endpoint, *args)}")
        say(report.summary(record, out))
        return record
    finally:
        if control is not None:
            control.close()
        server.stop()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
