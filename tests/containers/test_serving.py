"""The model server against moto S3, with models written by the example training entrypoint."""

from __future__ import annotations

import json
import math
import signal
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from serving.app import ConfigError, Settings, create_app
from serving.model import Model, ModelError, ModelStore, S3Reader
from tests.containers.helpers import BUCKET, PYTHON, REPO, subprocess_env, wait_until
from worker import example_train as et


def train(job_id: str, steps: int = 20, features: int = 4) -> dict[str, Any]:
    """Run the example entrypoint in-process against moto; return the model document it published."""
    environ = {"TRAIN_JOB_ID": job_id, "TRAIN_ARTIFACTS_URI": f"s3://{BUCKET}/jobs/{job_id}/"}
    args = ["--steps", str(steps), "--step-seconds", "0", "--features", str(features)]
    assert et.Trainer(et.parse_config(args, environ)).run() == 0
    return json.loads(et.read_bytes(f"s3://{BUCKET}/models/{job_id}/model.json") or b"")


@pytest.fixture
def settings() -> Settings:
    return Settings(bucket=BUCKET, max_instances=5, max_body_bytes=4096)  # models/ prefix, models/LATEST


@pytest.fixture
def client(s3: Any, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, poll=False)) as test_client:
        yield test_client


def store_of(client: TestClient) -> ModelStore:
    store = client.app.state.models  # type: ignore[attr-defined]
    assert isinstance(store, ModelStore)
    return store


def test_health_answers_before_any_model_exists(client: TestClient) -> None:
    assert store_of(client).refresh() is False
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model_loaded": False}
    assert client.get("/model").json()["loaded"] is False


def test_predict_without_model_is_503(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [[0, 0, 0, 0]]})
    assert response.status_code == 503
    assert "no model loaded yet" in response.json()["error"]


def test_serves_model_written_by_training_job(client: TestClient) -> None:
    doc = train("job-a")
    assert store_of(client).refresh() is True

    info = client.get("/model").json()
    assert info["loaded"] is True
    assert info["model"]["job_id"] == "job-a"
    assert info["model"]["model_uri"] == f"s3://{BUCKET}/models/job-a/model.json"
    assert info["model"]["features"] == ["x0", "x1", "x2", "x3"]

    rows = [[1.0, -2.0, 0.5, 3.0], {"x0": 0.0, "x1": 0.0, "x2": 0.0, "x3": 0.0}]
    response = client.post("/predict", json={"instances": rows})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"job_id": "job-a", "created_at": doc["created_at"]}
    z = doc["bias"] + sum(w * x for w, x in zip(doc["weights"], rows[0], strict=True))
    assert body["predictions"][0]["probability"] == pytest.approx(1 / (1 + math.exp(-z)))
    assert body["predictions"][0]["label"] == int(z >= 0)
    assert body["predictions"][1]["probability"] == pytest.approx(1 / (1 + math.exp(-doc["bias"])))
    assert client.get("/health").json()["model_loaded"] is True


def test_reloads_only_when_a_newer_model_appears(client: TestClient) -> None:
    train("job-a")
    store = store_of(client)
    assert store.refresh() is True
    assert store.refresh() is False  # pointer unchanged: nothing re-read
    train("job-b", features=3)
    assert store.refresh() is True
    assert client.get("/model").json()["model"]["job_id"] == "job-b"
    assert client.post("/predict", json={"instances": [[1, 2, 3]]}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "request body is not valid JSON"),
        (b"[1, 2]", 422, '{"instances": [...]}'),
        (b'{"rows": [[1, 2, 3, 4]]}', 422, '{"instances": [...]}'),
        (b'{"instances": []}', 422, "at least one instance"),
        (b'{"instances": [[1, 2, 3]]}', 422, "instances[0]: expected 4 values, got 3"),
        (b'{"instances": [[1, 2, 3, 4], [1, "a", 3, 4]]}', 422, "instances[1]: every value must be a finite number"),
        (b'{"instances": [[1, 2, 3, true]]}', 422, "every value must be a finite number"),
        (
            b'{"instances": [{"x0": 1, "x1": 2, "x2": 3, "y": 4}]}',
            422,
            "missing features ['x3'], unknown features ['y']",
        ),
        (b'{"instances": ["text"]}', 422, "expected a list of numbers or an object"),
        (
            b'{"instances": [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]}',
            422,
            "too many instances: 6 > 5",
        ),
    ],
)
def test_bad_requests_get_4xx_with_clear_message(client: TestClient, body: bytes, status: int, message: str) -> None:
    train("job-a")
    store_of(client).refresh()
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert message in response.json()["error"]


def test_oversized_body_is_413(client: TestClient) -> None:
    response = client.post("/predict", content=b"[" + b"1," * 5000 + b"1]")
    assert response.status_code == 413


def test_wrong_method_and_unknown_path(client: TestClient) -> None:
    assert client.get("/predict").status_code == 405
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


def _put(s3: Any, key: str, body: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body if isinstance(body, bytes) else json.dumps(body).encode())


@pytest.mark.parametrize(
    ("pointer", "model", "message"),
    [
        (b"garbage", None, "models/LATEST: not JSON"),
        (
            {"model_uri": "s3://other-bucket/models/m.json"},
            None,
            "must be an s3:// URI under s3://artifacts-test/models/",
        ),
        ({"model_uri": f"s3://{BUCKET}/jobs/j/secret.json"}, None, "must be an s3:// URI under"),
        ({"model_uri": "file:///etc/passwd"}, None, "must be an s3:// URI"),
        ({"job": "x"}, None, "'model_uri' must be"),
        ({"model_uri": f"s3://{BUCKET}/models/m.json"}, b"{", "models/m.json: not JSON"),
        ({"model_uri": f"s3://{BUCKET}/models/m.json"}, {"format": "pickle"}, "format 'pickle' is not"),
        (
            {"model_uri": f"s3://{BUCKET}/models/m.json"},
            {"format": et.MODEL_FORMAT, "features": []},
            "'features' must be",
        ),
        (
            {"model_uri": f"s3://{BUCKET}/models/m.json"},
            {"format": et.MODEL_FORMAT, "features": ["a", "b"], "weights": [1.0], "bias": 0},
            "'weights' must be 2 finite numbers",
        ),
        (
            {"model_uri": f"s3://{BUCKET}/models/m.json"},
            {"format": et.MODEL_FORMAT, "features": ["a"], "weights": [1.0], "bias": "x"},
            "'bias' must be a finite number",
        ),
    ],
)
def test_broken_pointer_or_model_keeps_current_model(
    client: TestClient, s3: Any, pointer: Any, model: Any, message: str
) -> None:
    train("job-good")
    store = store_of(client)
    assert store.refresh() is True
    if model is not None:
        _put(s3, "models/m.json", model)
    _put(s3, "models/LATEST", pointer)

    assert store.refresh() is False
    info = client.get("/model").json()
    assert message in info["last_error"]
    assert info["model"]["job_id"] == "job-good"
    assert store.refresh() is False  # the same broken pointer is not re-read
    assert client.post("/predict", json={"instances": [[0, 0, 0, 0]]}).status_code == 200


def test_s3_failure_is_reported_and_retried(client: TestClient, s3: Any) -> None:
    _put(s3, "models/LATEST", {"model_uri": f"s3://{BUCKET}/models/late/model.json"})
    store = store_of(client)
    assert store.refresh() is False
    assert "NoSuchKey" in (store.status()["last_error"] or "")
    train("late")  # the model appears (and the pointer is rewritten)
    assert store.refresh() is True
    assert store.status()["last_error"] is None


def test_missing_bucket_does_not_break_health(aws: None) -> None:
    app = create_app(Settings(bucket="missing-bucket"), poll=False)
    with TestClient(app) as test_client:
        assert store_of(test_client).refresh() is False
        assert test_client.get("/health").status_code == 200
        assert test_client.get("/model").json()["last_error"]


def test_background_poller_loads_model(s3: Any) -> None:
    train("job-p")
    with TestClient(create_app(Settings(bucket=BUCKET, poll_seconds=1))) as test_client:
        wait_until(lambda: test_client.get("/model").json()["loaded"], what="poller to load the model")
        assert test_client.get("/model").json()["model"]["job_id"] == "job-p"


def test_model_from_document_requires_object() -> None:
    with pytest.raises(ModelError, match="expected a JSON object"):
        Model.from_document([1], model_uri="s3://b/k")


def test_s3_reader_etag_of_missing_key_is_none(s3: Any) -> None:
    assert S3Reader(BUCKET).etag("models/LATEST") is None


def test_settings_from_env_defaults_and_values() -> None:
    settings = Settings.from_env({"ARTIFACTS_BUCKET": "b", "PORT": "9000", "MODEL_POLL_SECONDS": "2.5"})
    assert (settings.bucket, settings.port, settings.poll_seconds, settings.pointer_key) == (
        "b",
        9000,
        2.5,
        "models/LATEST",
    )


def test_models_prefix_sets_pointer_and_allowed_keys() -> None:
    settings = Settings.from_env({"ARTIFACTS_BUCKET": "b", "MODELS_PREFIX": "/ml-models/"})
    assert (settings.models_prefix, settings.pointer_key) == ("ml-models/", "ml-models/LATEST")


def test_settings_report_every_problem() -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env(
            {"PORT": "http", "MODEL_POLL_SECONDS": "0", "SHUTDOWN_GRACE_SECONDS": "500", "MODEL_POINTER_KEY": "models/"}
        )
    text = str(error.value)
    for name in (
        "ARTIFACTS_BUCKET is required",
        "PORT must be an integer",
        "MODEL_POLL_SECONDS must be between",
        "SHUTDOWN_GRACE_SECONDS must be between",
        "MODEL_POINTER_KEY must name an object",
    ):
        assert name in text


def test_server_exits_2_on_bad_configuration() -> None:
    proc = subprocess.run(
        [PYTHON, "-m", "serving"], cwd=REPO, env=subprocess_env(PORT="x"), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "serving: configuration error: ARTIFACTS_BUCKET is required" in proc.stderr
    assert "Traceback" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_sigterm_lets_in_flight_request_finish() -> None:
    """uvicorn on SIGTERM: a request already being received completes; then the process exits."""
    port = _free_port()
    env = subprocess_env(ARTIFACTS_BUCKET=BUCKET, HOST="127.0.0.1", PORT=str(port), MODEL_POLL_SECONDS="3600")
    proc = subprocess.Popen(
        [PYTHON, "-m", "serving"], cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert proc.stderr is not None
    try:
        stderr = proc.stderr
        wait_until(lambda: "Uvicorn running" in stderr.readline(), what="startup")
        body = b'{"instances": [[1, 2, 3, 4]]}'
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:10]
        )
        proc.terminate()  # SIGTERM while the request body is still arriving
        wait_until(lambda: "Shutting down" in stderr.readline(), what="shutdown start")
        conn.sendall(body[10:])
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
            if b"\r\n\r\n" in response and response.endswith(b"}"):
                break
        conn.close()
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled
    finally:
        proc.kill()
    assert response.startswith(b"HTTP/1.1 503")  # answered (no model in this bucket-less run), not dropped
    assert b"no model loaded yet" in response
