"""The served model and the store that keeps the newest one loaded.

Layout in the artifacts bucket (written by ``worker/example_train.py``): the pointer ``models/LATEST`` is JSON
``{"job_id", "model_uri", "created_at"}``; ``model_uri`` (``s3://<same bucket>/models/<job_id>/model.json``)
holds
``{"format": "logistic-regression/v1", "job_id", "created_at", "features", "weights", "bias", ...}``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlparse

MODEL_FORMAT = "logistic-regression/v1"

log = logging.getLogger("serving.model")


class ModelError(Exception):
    """A pointer or model document that cannot be served."""


class BadInstance(ValueError):
    """A prediction request that does not fit the loaded model."""


@dataclass(frozen=True)
class Model:
    """A logistic-regression model: probability = sigmoid(weights . x + bias)."""

    job_id: str
    created_at: str
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    model_uri: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: Any, *, model_uri: str) -> Model:
        """Validate a decoded ``model.json``; raises ModelError naming the bad field."""
        if not isinstance(doc, dict):
            raise ModelError(f"{model_uri}: expected a JSON object")
        if doc.get("format") != MODEL_FORMAT:
            raise ModelError(f"{model_uri}: format {doc.get('format')!r} is not {MODEL_FORMAT!r}")
        features, weights, bias = doc.get("features"), doc.get("weights"), doc.get("bias")
        if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
            raise ModelError(f"{model_uri}: 'features' must be a non-empty list of names")
        if not isinstance(weights, list) or len(weights) != len(features) or not all(map(_is_number, weights)):
            raise ModelError(f"{model_uri}: 'weights' must be {len(features)} finite numbers")
        if not _is_number(bias):
            raise ModelError(f"{model_uri}: 'bias' must be a finite number")
        return cls(
            job_id=str(doc.get("job_id", "")),
            created_at=str(doc.get("created_at", "")),
            features=tuple(features),
            weights=tuple(float(w) for w in weights),
            bias=float(bias),  # type: ignore[arg-type]  # checked by _is_number
            model_uri=model_uri,
            metadata={k: doc[k] for k in ("attempt", "steps", "resumed_from_step", "metrics") if k in doc},
        )

    def vector(self, instance: Any, index: int) -> list[float]:
        """An instance as a feature vector: a list in feature order or an object keyed by feature name."""
        where = f"instances[{index}]"
        if isinstance(instance, Mapping):
            missing = [f for f in self.features if f not in instance]
            unknown = sorted(set(instance) - set(self.features))
            if missing or unknown:
                raise BadInstance(f"{where}: missing features {missing}, unknown features {unknown}")
            values = [instance[f] for f in self.features]
        elif isinstance(instance, list):
            if len(instance) != len(self.features):
                raise BadInstance(f"{where}: expected {len(self.features)} values, got {len(instance)}")
            values = instance
        else:
            raise BadInstance(f"{where}: expected a list of numbers or an object keyed by feature name")
        if not all(map(_is_number, values)):
            raise BadInstance(f"{where}: every value must be a finite number")
        return [float(v) for v in values]

    def predict(self, instances: Sequence[Any]) -> list[dict[str, float | int]]:
        """Probability and label (threshold 0.5) per instance; raises BadInstance."""
        vectors = [self.vector(inst, i) for i, inst in enumerate(instances)]
        out: list[dict[str, float | int]] = []
        for x in vectors:
            z = self.bias + math.fsum(w * v for w, v in zip(self.weights, x, strict=True))
            p = 1.0 / (1.0 + math.exp(-max(-500.0, min(500.0, z))))
            out.append({"probability": p, "label": int(p >= 0.5)})
        return out

    def describe(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "created_at": self.created_at,
            "model_uri": self.model_uri,
            "features": list(self.features),
            **self.metadata,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class ObjectReader(Protocol):
    """The two S3 reads the store needs (the boto3 adapter is ``S3Reader``)."""

    def etag(self, key: str) -> str | None:
        """The object's ETag, or None when it does not exist."""

    def read(self, key: str) -> bytes:
        """The object's bytes."""


class S3Reader:
    """ObjectReader over one bucket; the boto3 client is created on first use."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def etag(self, key: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            return str(self.client.head_object(Bucket=self.bucket, Key=key)["ETag"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body


class ModelStore:
    """Holds the current model; ``refresh()`` (called off the request path) loads a newer one.

    A refresh reads the pointer's ETag (one HEAD) and, only when it changed, the pointer and the model.
    A pointer or model that cannot be loaded leaves the current model in place; ``status()`` reports why.
    """

    def __init__(self, reader: ObjectReader, *, bucket: str, pointer_key: str, models_prefix: str = "") -> None:
        self.reader = reader
        self.bucket = bucket
        self.pointer_key = pointer_key
        self.models_prefix = models_prefix
        self.model: Model | None = None
        self.pointer_etag: str | None = None
        self.loaded_at: str | None = None
        self.last_error: str | None = None
        self.last_checked: str | None = None
        self._lock = threading.Lock()

    def refresh(self) -> bool:
        """Load the model the pointer names if the pointer changed; True when a new model was loaded."""
        with self._lock:
            self.last_checked = _now()
            try:
                etag = self.reader.etag(self.pointer_key)
                if etag is None or etag == self.pointer_etag:
                    return False
                model = self._load()
            except ModelError as exc:  # bad content: do not re-read it until the pointer changes
                self.pointer_etag, self.last_error = etag, str(exc)
                log.warning("model not loaded: %s", exc)
                return False
            except Exception as exc:  # S3 or network trouble: keep serving the current model
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("model refresh failed: %s", self.last_error)
                return False
            self.model, self.pointer_etag, self.loaded_at, self.last_error = model, etag, _now(), None
            log.info("loaded model of job %s from %s", model.job_id, model.model_uri)
            return True

    def _load(self) -> Model:
        where = f"s3://{self.bucket}/{self.pointer_key}"
        try:
            pointer = json.loads(self.reader.read(self.pointer_key))
        except ValueError as exc:
            raise ModelError(f"{where}: not JSON ({exc})") from None
        model_uri = pointer.get("model_uri") if isinstance(pointer, dict) else None
        parsed = urlparse(model_uri) if isinstance(model_uri, str) else None
        key = parsed.path.lstrip("/") if parsed is not None else ""
        if (
            parsed is None
            or parsed.scheme != "s3"
            or parsed.netloc != self.bucket
            or not key.startswith(self.models_prefix)
            or key.endswith("/")
        ):
            raise ModelError(
                f"{where}: 'model_uri' must be an s3:// URI under s3://{self.bucket}/{self.models_prefix}, "
                f"got {model_uri!r}"
            )
        try:
            doc = json.loads(self.reader.read(key))
        except ValueError as exc:
            raise ModelError(f"{model_uri}: not JSON ({exc})") from None
        return Model.from_document(doc, model_uri=str(model_uri))

    def status(self) -> dict[str, Any]:
        return {
            "loaded": self.model is not None,
            "model": self.model.describe() if self.model else None,
            "loaded_at": self.loaded_at,
            "pointer": f"s3://{self.bucket}/{self.pointer_key}",
            "last_checked": self.last_checked,
            "last_error": self.last_error,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
