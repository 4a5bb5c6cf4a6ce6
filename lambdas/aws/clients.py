"""Lazily created boto3 clients and the one place where botocore errors become domain errors.

boto3 is imported on first use, never at module import (cold-start budget); each client is created once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from jobs.errors import AwsCallError, QueueNotFound, RequestRejected, ServiceNotFound, Throttled, TransientAwsError

# Codes botocore itself treats as throttling (botocore/retries/standard.py), plus ECS/SQS spellings.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "AWS.SimpleQueueService.RequestThrottled",
    }
)

NOT_FOUND_CODES: Mapping[str, type[RequestRejected]] = {
    "AWS.SimpleQueueService.NonExistentQueue": QueueNotFound,
    "QueueDoesNotExist": QueueNotFound,
    "ServiceNotFoundException": ServiceNotFound,
    "ServiceNotActiveException": ServiceNotFound,
    "ClusterNotFoundException": ServiceNotFound,
}

MAX_ATTEMPTS = 4
"""botocore standard retry mode: 1 call + 3 retries with jittered exponential backoff, then we back off."""

READ_TIMEOUT_S = 20


@functools.cache
def client(service: str, *, read_timeout: int = READ_TIMEOUT_S) -> Any:
    """The process-wide client for `service` (created on first use), one per distinct `read_timeout`.

    `read_timeout` is how long one attempt waits for a response. A function whose Lambda timeout is short
    lowers it so that a hung attempt still leaves time for botocore's retries (the scaler: 10 s in 30 s).
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=3,
        read_timeout=read_timeout,
    )
    return boto3.client(service, config=config)


def reset_clients() -> None:
    """Forget cached clients (tests create fresh ones inside each moto context)."""
    client.cache_clear()


def error_code(exc: BaseException) -> str | None:
    """botocore ClientError's `Error.Code`, or None for anything that is not an AWS error response."""
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def translate(operation: str, exc: BaseException) -> AwsCallError | None:
    """Map a botocore ClientError to Throttled / TransientAwsError / QueueNotFound / ServiceNotFound /
    RequestRejected, and any other botocore error (no connection, read timeout, invalid parameters) to
    AwsCallError carrying its class name as the code; None for anything that is not a botocore error."""
    code = error_code(exc)
    if code is None:
        from botocore.exceptions import BotoCoreError  # loaded already: the failed call imported it

        if isinstance(exc, BotoCoreError):
            return AwsCallError(operation, type(exc).__name__, str(exc))
        return None
    response: Mapping[str, Any] = getattr(exc, "response", {})
    message = str(response.get("Error", {}).get("Message", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in THROTTLING_CODES:
        return Throttled(operation, code, message)
    if status >= 500 or code in ("ServerException", "InternalError", "ServiceUnavailable"):
        return TransientAwsError(operation, code, message)
    return NOT_FOUND_CODES.get(code, RequestRejected)(operation, code, message)


def call(operation: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """`fn(**kwargs)` with an AWS error response raised as its domain error (see `translate`)."""
    try:
        return fn(**kwargs)
    except Exception as exc:
        error = translate(operation, exc)
        if error is None:
            raise
        raise error from exc
