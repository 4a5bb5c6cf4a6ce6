"""``python -m worker``: validate the environment, then long-poll the worker queue until SIGTERM.

Exit codes: 0 after a clean stop, 2 for a bad configuration (the message names every bad variable).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType


def main() -> int:
    from worker.settings import SettingsError, WorkerSettings

    try:
        settings = WorkerSettings.from_env(os.environ)
    except SettingsError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    for noisy in ("botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))

    from aws.clients import client
    from aws.job_store import DynamoJobStore
    from worker.protection import ProtectionClient, ProtectionKeeper
    from worker.service import Worker, task_arn_from_metadata

    worker = Worker(
        settings,
        sqs=client("sqs"),
        store=DynamoJobStore(client("dynamodb"), settings.table_name),
        protection=ProtectionKeeper(ProtectionClient(settings.agent_uri), minutes=settings.protection_minutes),
        base_env=os.environ,
        sink=sys.stdout.buffer,
        task_arn=task_arn_from_metadata(settings.metadata_uri),
    )

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        worker.request_stop(f"received {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
