"""Reference model server (Starlette on uvicorn).

- ``GET /health``: cheap liveness for the ALB target group; 200 even before any model exists.
- ``POST /predict``: ``{"instances": [[x0, x1, ...] | {"x0": ..., ...}, ...]}`` ->
  ``{"predictions": [{"probability", "label"}], "model": {"job_id", "created_at"}}``;
  503 while no model is loaded.
- ``GET /model``: which model is loaded, from where, when, and the last refresh error.

A background task refreshes the model every ``MODEL_POLL_SECONDS`` (one HEAD on the pointer; the model is read
only when the pointer changed), never on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from serving.model import BadInstance, ModelStore, S3Reader

log = logging.getLogger("serving")


class ConfigError(Exception):
    """An invalid environment variable (the message names it)."""


@dataclass(frozen=True)
class Settings:
    """Server configuration, read once from the environment by ``from_env``."""

    bucket: str
    models_prefix: str = "models/"
    pointer_key: str = "models/LATEST"
    poll_seconds: float = 30.0
    host: str = "0.0.0.0"  # a container listens on all interfaces
    port: int = 8080
    shutdown_grace_seconds: int = 25
    max_body_bytes: int = 1_048_576
    max_instances: int = 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read ``ARTIFACTS_BUCKET`` (required), ``MODELS_PREFIX``, ``MODEL_POINTER_KEY``, ``MODEL_POLL_SECONDS``,
        ``HOST``, ``PORT``, ``SHUTDOWN_GRACE_SECONDS``, ``MAX_BODY_BYTES``, ``MAX_INSTANCES``.

        Raises ConfigError naming every bad variable."""
        problems: list[str] = []
        bucket = environ.get("ARTIFACTS_BUCKET", "").strip()
        if not bucket:
            problems.append("ARTIFACTS_BUCKET is required (the bucket training jobs write models to)")
        prefix = environ.get("MODELS_PREFIX", cls.models_prefix).strip().strip("/")
        prefix = prefix + "/" if prefix else ""
        pointer_key = environ.get("MODEL_POINTER_KEY", prefix + "LATEST").strip().lstrip("/")
        if not pointer_key or pointer_key.endswith("/"):
            problems.append(f"MODEL_POINTER_KEY must name an object, got {pointer_key!r}")

        def number(name: str, default: float, low: float, high: float, kind: type = int) -> Any:
            text = environ.get(name)
            if text is None or text == "":
                return default
            try:
                value = kind(text)
            except ValueError:
                problems.append(f"{name} must be a{'n integer' if kind is int else ' number'}, got {text!r}")
                return default
            if not low <= value <= high:
                problems.append(f"{name} must be between {low} and {high}, got {text!r}")
            return value

        settings = cls(
            bucket=bucket,
            models_prefix=prefix,
            host=environ.get("HOST") or cls.host,
            pointer_key=pointer_key,
            poll_seconds=number("MODEL_POLL_SECONDS", cls.poll_seconds, 1, 3600, float),
            port=number("PORT", cls.port, 1, 65535),
            shutdown_grace_seconds=number("SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds, 0, 120),
            max_body_bytes=number("MAX_BODY_BYTES", cls.max_body_bytes, 16, 64 * 1_048_576),
            max_instances=number("MAX_INSTANCES", cls.max_instances, 1, 1_000_000),
        )
        if problems:
            raise ConfigError("; ".join(problems))
        return settings


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail)


def create_app(settings: Settings, store: ModelStore | None = None, *, poll: bool = True) -> Starlette:
    """The ASGI app; ``poll=False`` leaves refreshing to the caller (tests call ``store.refresh()``)."""
    models = store or ModelStore(
        S3Reader(settings.bucket),
        bucket=settings.bucket,
        pointer_key=settings.pointer_key,
        models_prefix=settings.models_prefix,
    )

    async def poller() -> None:
        while True:
            await asyncio.to_thread(models.refresh)
            await asyncio.sleep(settings.poll_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(poller()) if poll else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "model_loaded": models.model is not None})

    async def model_info(_request: Request) -> Response:
        return JSONResponse(models.status())

    async def predict(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return _error(400, f"request body is not valid JSON: {exc}")
        instances = body.get("instances") if isinstance(body, dict) else None
        if not isinstance(instances, list) or not instances:
            return _error(422, 'expected a JSON object {"instances": [...]} with at least one instance')
        if len(instances) > settings.max_instances:
            return _error(422, f"too many instances: {len(instances)} > {settings.max_instances}")
        model = models.model
        if model is None:
            return _error(503, "no model loaded yet: no training job has published one")
        try:
            predictions = model.predict(instances)
        except BadInstance as exc:
            return _error(422, str(exc))
        return JSONResponse(
            {"predictions": predictions, "model": {"job_id": model.job_id, "created_at": model.created_at}}
        )

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/model", model_info, methods=["GET"]),
            Route("/predict", predict, methods=["POST"]),
        ],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
    )
    app.state.models = models
    return app
