"""Typed errors of the scaler. AWS error codes are translated into these in one place
(``scaler.adapters.translate_client_error``); nothing matches error strings.

They live here rather than in ``common/errors.py`` so that the scaler package does not
depend on the other functions' shared package; they can move there unchanged.
"""

from __future__ import annotations


class ScalerError(Exception):
    """Base class of every error the scaler raises on purpose."""


class ConfigError(ScalerError):
    """A required environment variable is missing or invalid; the message names it."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class QueueNotFound(ScalerError):
    """The worker queue does not exist (or the scaler may not read it)."""


class ServiceNotFound(ScalerError):
    """The worker service or its cluster does not exist, or the service is not ACTIVE."""


class Throttled(ScalerError):
    """AWS kept throttling a call after the SDK's standard-mode retries; nothing was changed."""


class AwsCallFailed(ScalerError):
    """Any other AWS error; carries the operation and the AWS error code."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code
