"""trainctl's exit codes, and the one place where AWS client errors become one-line trainctl errors (matched on
error codes, never text)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""Success; an error or a job that did not succeed; invalid arguments or job spec; interrupted."""


class TrainctlError(Exception):
    """A failure reported as one line on stderr; ``exit_code`` is the process exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def aws_call(
    operation: str, call: Callable[..., T], /, *, _messages: Mapping[str, str] | None = None, **kwargs: Any
) -> T:
    """Run one AWS call; any botocore failure becomes a TrainctlError naming the operation. ``_messages`` maps
    error codes to friendlier messages."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        return call(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if _messages and error.get("Code") in _messages:
            raise TrainctlError(_messages[error["Code"]]) from None
        raise TrainctlError(f"{operation} failed: {error.get('Code', 'Error')}: {error.get('Message', '')}") from None
    except NoCredentialsError:
        raise TrainctlError(
            f"{operation} failed: no AWS credentials (set AWS_PROFILE / --profile, or AWS_ACCESS_KEY_ID)"
        ) from None
    except NoRegionError:
        raise TrainctlError(f"{operation} failed: no AWS region (set AWS_REGION or pass --region)") from None
    except BotoCoreError as exc:
        raise TrainctlError(f"{operation} failed: {exc}") from None
