"""trainctl: submit and operate training jobs of the ECS Training Autoscaler.

Entry point ``trainctl.cli:main``. Exit codes: 0 success, 1 an error or a job that did not succeed,
2 invalid arguments or job spec, 130 interrupted. Errors are one line on stderr (validation lists every
problem). Only argparse is imported at start; boto3 and pydantic load when a command needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from trainctl.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, TrainctlError

STATES = ("SUBMITTED", "DISPATCHED", "RUNNING", "SUCCEEDED", "FAILED", "RETRYING", "CANCELLED", "REJECTED")


class Parser(argparse.ArgumentParser):
    """argparse with trainctl's one-line error format (exit code 2)."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"trainctl: error: {message} (see: {self.prog} --help)\n")


def _common(suppress: bool) -> Parser:
    """Options accepted both before and after the subcommand."""
    from trainctl.resources import RESOURCES

    default: Any = argparse.SUPPRESS if suppress else None
    parent = Parser(add_help=False)
    aws = parent.add_argument_group("deployment (default: the stack's outputs)")
    aws.add_argument("--stack", default=default, help="CloudFormation stack name (env TRAINCTL_STACK)")
    aws.add_argument("--region", default=default, help="AWS region (default: AWS_REGION / profile)")
    aws.add_argument("--profile", default=default, help="AWS profile")
    aws.add_argument("--endpoint-url", default=default, help="AWS endpoint, e.g. the local mode (env AWS_ENDPOINT_URL)")
    for resource in RESOURCES.values():
        aws.add_argument(resource.option, dest=resource.key, default=default, help=argparse.SUPPRESS)
    parent.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS if suppress else False, help="machine output"
    )
    return parent


def build_parser() -> Parser:
    common = _common(suppress=True)
    parser = Parser(
        prog="trainctl",
        description="Submit and operate training jobs (ECS Training Autoscaler).",
        parents=[_common(suppress=False)],
        epilog="Resource overrides: --worker-queue-url --dispatch-queue-url --worker-dlq-url --dispatch-dlq-url "
        "--jobs-table --cluster --worker-service --artifacts-bucket --training-log-group --worker-log-group, or the "
        "same names as TRAINCTL_* variables (e.g. TRAINCTL_WORKER_QUEUE_URL). Exit codes: 0 ok, 1 error or job not "
        "SUCCEEDED, "
        "2 invalid input, 130 interrupted.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True

    submit = commands.add_parser(
        "submit", parents=[common], help="validate and enqueue a job", description="Validate and enqueue job(s)."
    )
    submit.add_argument("file", nargs="?", help="job.yaml | job.json | - (stdin); flags override its fields")
    spec = submit.add_argument_group("job fields")
    spec.add_argument("--job-id")
    spec.add_argument("--name")
    spec.add_argument(
        "--command", dest="command_line", help='the command, shell-quoted ("python train.py --lr 0.1") or a JSON list'
    )
    spec.add_argument("--image")
    spec.add_argument("--cpu", type=_int, help="vCPU units (Fargate sizes: 256 ... 16384)")
    spec.add_argument("--memory", type=_int, help="MiB (valid for the cpu size)")
    spec.add_argument("--gpu", type=_int)
    spec.add_argument("--nodes", type=_int, help="ranks of a distributed job (needs --dedicated; one task per rank)")
    spec.add_argument("--env", action="append", default=[], metavar="K=V", help="environment variable (repeatable)")
    spec.add_argument("--tag", action="append", default=[], metavar="K=V", help="tag (repeatable)")
    spec.add_argument("--max-attempts", type=_int)
    spec.add_argument("--timeout", type=_int, dest="timeout_seconds", metavar="SECONDS")
    spec.add_argument("--priority", type=_int)
    spec.add_argument("--checkpoint-uri")
    spot = spec.add_mutually_exclusive_group()
    spot.add_argument("--spot", dest="spot", action="store_const", const=True, help="allow Spot (default)")
    spot.add_argument("--no-spot", dest="spot", action="store_const", const=False, help="on-demand only")
    spec.add_argument("--dedicated", action="store_const", const=True, help="one task per job (dispatch queue)")
    spec.add_argument("--array", type=_int, metavar="N", help="an array job: N children (TRAIN_ARRAY_INDEX 0..N-1)")
    _wait_options(submit)

    status = commands.add_parser("status", parents=[common], help="show one job")
    status.add_argument("job_id")
    _wait_options(status)

    listing = commands.add_parser("list", parents=[common], help="list jobs (a table)")
    listing.add_argument("--state", type=_state, help=f"one of {', '.join(STATES)}")
    listing.add_argument("--limit", type=_int, default=50, help="at most this many jobs (default 50)")
    listing.add_argument("--parent", metavar="JOB_ID", help="the children of an array job or sweep")

    explain = commands.add_parser("explain", parents=[common], help="why a job is waiting (or how it ended)")
    explain.add_argument("job_id")

    cancel = commands.add_parser("cancel", parents=[common], help="cancel a job (stops its task)")
    cancel.add_argument("job_id")

    logs = commands.add_parser("logs", parents=[common], help="a job's CloudWatch Logs")
    logs.add_argument("job_id")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the job finishes")
    logs.add_argument("--interval", type=_seconds, default=2.0, help=argparse.SUPPRESS)

    dlq = commands.add_parser("dlq", help="inspect and redrive rejected messages")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", parser_class=Parser)
    dlq_commands.required = True
    for name, text in (("list", "messages in the DLQs, with their reasons"), ("redrive", "send them back")):
        action = dlq_commands.add_parser(name, parents=[common], help=text)
        action.add_argument("--queue", choices=("worker", "dispatch", "all"), default="all")
        action.add_argument("--max", type=_int, default=100, help="at most this many messages (default 100)")
        if name == "redrive":
            action.add_argument("--job", action="append", default=[], metavar="JOB_ID", help="only these jobs")
    return parser


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wait", action="store_true", help="follow the job to a terminal state")
    parser.add_argument("--interval", type=_seconds, default=2.0, help="seconds between polls (default 2)")
    parser.add_argument("--wait-timeout", type=_seconds, default=0.0, help="give up after this many seconds")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10**7:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text!r}")
    return value


def _state(text: str) -> str:
    if text.upper() not in STATES:
        raise argparse.ArgumentTypeError(f"unknown state {text!r}; one of {', '.join(STATES)}")
    return text.upper()


def main(argv: Sequence[str] | None = None) -> int:
    """Run trainctl; returns the exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    try:
        from trainctl import cancel, dlq, logs, show, submit
        from trainctl.resources import Session

        handler = {
            "submit": submit.submit,
            "status": show.status,
            "list": show.list_jobs,
            "cancel": cancel.cancel,
            "explain": show.explain_job,
            "logs": logs.logs,
            "dlq": dlq.dlq,
        }[args.command]
        return handler(Session(args, os.environ), args, sys.stdout)
    except TrainctlError as exc:
        print(f"trainctl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("trainctl: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
