"""`trainctl logs`: a job's CloudWatch Logs, found through its task definition's awslogs options."""

from __future__ import annotations

from typing import IO, Any

from jobs.record import JobRecord
from trainctl import follow
from trainctl.errors import EXIT_OK, TrainctlError, aws_call
from trainctl.resources import Session

# Log stream layout of the CDK task definitions (awslogs: <prefix>/<container>/<task id>), used when ECS no
# longer describes a stopped task (about an hour after it stopped).
FALLBACK_STREAMS = {"worker": ("worker_log_group", "worker/worker"), "dispatch": ("training_log_group", "job/trainer")}


def _log_location(session: Session, record: JobRecord) -> tuple[str, str]:
    """(log group, log stream) of the job's task, from its task definition's awslogs options."""
    assert record.task_arn is not None
    task_id = record.task_arn.rsplit("/", 1)[-1]
    ecs = session.client("ecs")
    cluster = session.find("cluster")
    described = (
        aws_call("DescribeTasks", ecs.describe_tasks, cluster=cluster, tasks=[record.task_arn]) if cluster else {}
    )
    tasks = described.get("tasks") or []
    if tasks:
        definition = aws_call(
            "DescribeTaskDefinition", ecs.describe_task_definition, taskDefinition=tasks[0]["taskDefinitionArn"]
        )["taskDefinition"]
        containers = [
            c
            for c in definition.get("containerDefinitions", [])
            if (c.get("logConfiguration") or {}).get("logDriver") == "awslogs"
        ]
        containers.sort(key=lambda c: c.get("name") != "trainer")
        if containers:
            options = containers[0]["logConfiguration"].get("options", {})
            group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
            if group and prefix:
                return str(group), f"{prefix}/{containers[0]['name']}/{task_id}"
    group_key, stream_prefix = FALLBACK_STREAMS.get(record.queue or "", FALLBACK_STREAMS["dispatch"])
    return session.get(group_key), f"{stream_prefix}/{task_id}"


def logs(session: Session, args: Any, out: IO[str]) -> int:
    record = session.job(args.job_id)
    if not record.task_arn:
        raise TrainctlError(f"job {record.job_id} has no task yet ({record.state}): no logs to show")
    group, stream = _log_location(session, record)
    client = session.client("logs")
    request: dict[str, Any] = {"logGroupName": group, "logStreamNames": [stream]}
    if record.queue == "worker":  # a worker's stream holds many jobs; each output line carries "[job#attempt] "
        request["filterPattern"] = f'"[{record.job_id}#"'
    start = 0
    while True:
        token = None
        while True:
            page = aws_call(
                "FilterLogEvents",
                client.filter_log_events,
                _messages={"ResourceNotFoundException": f"no logs yet for job {record.job_id} ({group} {stream})"},
                **request,
                startTime=start,
                **({"nextToken": token} if token else {}),
            )
            for event in page.get("events", []):
                out.write(event["message"].rstrip("\n") + "\n")
                start = max(start, int(event["timestamp"]) + 1)
            token = page.get("nextToken")
            if not token:
                break
        out.flush()
        if not args.follow or session.job(record.job_id).terminal:
            return EXIT_OK
        follow.sleep(args.interval)
