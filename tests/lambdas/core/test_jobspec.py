"""JobSpec validation: pure, no mocks. Every bad input gets its own specific, field-named error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from jobs.errors import JobSpecInvalid
from jobs.jobspec import (
    MAX_BODY_BYTES,
    Deployment,
    JobSpec,
    derive_job_id,
    guess_job_id,
    parse_job_spec,
)
from jobs.sizes import FARGATE_MEMORY


def errors_of(document: str | dict[str, Any]) -> str:
    body = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(JobSpecInvalid) as caught:
        parse_job_spec(body)
    return str(caught.value)


def spec(**fields: Any) -> dict[str, Any]:
    return {"command": ["python", "train.py"], **fields}


def test_defaults() -> None:
    parsed = parse_job_spec(json.dumps(spec()))
    assert parsed.image == "default"
    assert (parsed.cpu, parsed.memory, parsed.gpu) == (1024, 2048, 0)
    assert (parsed.max_attempts, parsed.timeout_seconds, parsed.priority) == (3, 86400, 5)
    assert parsed.spot is True and parsed.dedicated is False
    assert parsed.job_id is None and parsed.checkpoint_uri is None


def test_full_spec_round_trips_through_json() -> None:
    document = spec(
        job_id="resnet-50_run-7",
        name="ResNet 50",
        image="big",
        environment={"EPOCHS": "90", "lr": "0.1"},
        cpu=4096,
        memory=16384,
        max_attempts=5,
        timeout_seconds=3600,
        spot=False,
        dedicated=True,
        priority=9,
        tags={"team": "vision", "cost-center": "ml:42"},
        checkpoint_uri="s3://my-bucket/ckpt/resnet/",
    )
    parsed = parse_job_spec(json.dumps(document))
    assert parse_job_spec(parsed.to_json()) == parsed
    assert parsed.default_checkpoint_uri("other") == "s3://my-bucket/ckpt/resnet/"


def test_default_checkpoint_uri_is_per_job_prefix() -> None:
    parsed = parse_job_spec(json.dumps(spec(job_id="j1")))
    assert parsed.default_checkpoint_uri("artifacts") == "s3://artifacts/jobs/j1/checkpoints/"


@pytest.mark.parametrize(("cpu", "memory"), [(c, m) for c, ms in FARGATE_MEMORY.items() for m in ms])
def test_every_fargate_combination_is_accepted(cpu: int, memory: int) -> None:
    assert parse_job_spec(json.dumps(spec(cpu=cpu, memory=memory))).memory == memory


def test_fargate_table_matches_the_documented_ranges() -> None:
    assert FARGATE_MEMORY[256] == (512, 1024, 2048)
    assert FARGATE_MEMORY[512] == (1024, 2048, 3072, 4096)
    assert FARGATE_MEMORY[4096][0] == 8192 and FARGATE_MEMORY[4096][-1] == 30720
    assert FARGATE_MEMORY[8192][1] - FARGATE_MEMORY[8192][0] == 4096
    assert FARGATE_MEMORY[16384][0] == 32768 and FARGATE_MEMORY[16384][-1] == 122880


# --- bad input: each gets its specific error ------------------------------------------------------


def test_malformed_json() -> None:
    message = errors_of('{"command": ["python"]')
    assert message.startswith("invalid job spec: body: malformed JSON:")


def test_not_an_object() -> None:
    assert errors_of("[1, 2, 3]") == "invalid job spec: body: must be a JSON object"


def test_empty_body() -> None:
    assert "body: malformed JSON" in errors_of("")


def test_unknown_field_is_named() -> None:
    assert errors_of(spec(gpus=1)) == "invalid job spec: gpus: unknown field 'gpus' is not allowed"


def test_several_unknown_fields_are_all_named() -> None:
    message = errors_of(spec(colour="red", retries=3))
    assert "colour: unknown field 'colour'" in message and "retries: unknown field 'retries'" in message


def test_missing_command() -> None:
    assert errors_of({"job_id": "j"}) == "invalid job spec: command: is required"


def test_command_wrong_type() -> None:
    assert errors_of(spec(command="python train.py")) == "invalid job spec: command: Input should be a valid array"


def test_command_empty() -> None:
    assert "command: List should have at least 1 item" in errors_of(spec(command=[]))


def test_command_too_many_arguments() -> None:
    assert "command: at most 64 arguments (got 65)" in errors_of(spec(command=["x"] * 65))


def test_command_too_long_in_total() -> None:
    assert "command: at most 2048 characters in total" in errors_of(spec(command=["x" * 1000] * 3))


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("cpu", "1024", "cpu: Input should be a valid integer"),
        ("memory", 2048.5, "memory: Input should be a valid integer"),
        ("spot", "yes", "spot: Input should be a valid boolean"),
        ("max_attempts", True, "max_attempts: Input should be a valid integer"),
        ("environment", ["A=1"], "environment: Input should be an object"),
        ("tags", {"team": 7}, "tags.team: Input should be a valid string"),
    ],
)
def test_wrong_types(field: str, value: Any, expected: str) -> None:
    assert expected in errors_of(spec(**{field: value}))


def test_oversized_environment_total() -> None:
    message = errors_of(spec(environment={"BIG": "x" * 5000}))
    assert message == "invalid job spec: environment: at most 4096 characters of names and values in total (got 5003)"


def test_too_many_environment_variables() -> None:
    env = {f"V{i}": "1" for i in range(51)}
    assert errors_of(spec(environment=env)) == "invalid job spec: environment: at most 50 variables (got 51)"


@pytest.mark.parametrize("key", ["AWS_REGION", "ECS_CONTAINER_METADATA_URI", "TRAIN_JOB_ID", "aws_secret"])
def test_reserved_environment_prefixes(key: str) -> None:
    message = errors_of(spec(environment={key: "x"}))
    assert f"environment: {key!r} uses a reserved prefix (AWS_, ECS_, TRAIN_ are set by the system)" in message


def test_invalid_environment_name() -> None:
    assert "environment: '1BAD' is not a valid variable name" in errors_of(spec(environment={"1BAD": "x"}))


def test_invalid_cpu() -> None:
    message = errors_of(spec(cpu=300))
    assert message == (
        "invalid job spec: cpu: 300 is not a Fargate cpu size; allowed: 256, 512, 1024, 2048, 4096, 8192, 16384"
    )


@pytest.mark.parametrize(
    ("cpu", "memory", "allowed"),
    [
        (256, 4096, "512, 1024, 2048"),
        (1024, 512, "2048..8192 in steps of 1024"),
        (4096, 31744, "8192..30720 in steps of 1024"),
        (8192, 20000, "16384..61440 in steps of 4096"),
        (16384, 36864, "32768..122880 in steps of 8192"),
    ],
)
def test_invalid_cpu_memory_pairs(cpu: int, memory: int, allowed: str) -> None:
    message = errors_of(spec(cpu=cpu, memory=memory))
    assert message == (
        f"invalid job spec: memory: {memory} MiB is not valid with cpu {cpu}; allowed for cpu {cpu}: {allowed}"
    )


def test_gpu_job_must_be_dedicated() -> None:
    message = errors_of(spec(gpu=1))
    assert message == (
        "invalid job spec: gpu: GPU jobs must set dedicated=true (queue workers run on Fargate, which has no GPUs)"
    )


def test_absurd_resources() -> None:
    assert "gpu: Input should be less than or equal to 8" in errors_of(spec(gpu=64, dedicated=True))
    assert "timeout_seconds: Input should be less than or equal to 1209600" in errors_of(spec(timeout_seconds=10**9))
    assert "max_attempts: Input should be less than or equal to 10" in errors_of(spec(max_attempts=1000))
    assert "priority: Input should be less than or equal to 9" in errors_of(spec(priority=99))


@pytest.mark.parametrize("job_id", ["", "-leading-dash", "has space", "a/b", "x" * 65, "é"])
def test_job_id_safe_characters_and_length(job_id: str) -> None:
    assert "job_id: String should match pattern" in errors_of(spec(job_id=job_id))


def test_reserved_and_invalid_tags() -> None:
    assert "tags: tag key 'job-id' is reserved" in errors_of(spec(tags={"job-id": "x"}))
    assert "tags: tag key 'aws:owner' is reserved" in errors_of(spec(tags={"aws:owner": "x"}))
    assert "tags: tag key 'a{b}' must be 1-128 characters" in errors_of(spec(tags={"a{b}": "x"}))
    assert "tags: at most 20 tags (got 21)" in errors_of(spec(tags={f"t{i}": "v" for i in range(21)}))


def test_checkpoint_uri_must_be_s3() -> None:
    assert "checkpoint_uri: String should match pattern" in errors_of(spec(checkpoint_uri="https://example.com/x"))


def test_oversized_body() -> None:
    body = json.dumps(spec(name="x" * (MAX_BODY_BYTES + 1)))
    assert errors_of(body).startswith(
        f"invalid job spec: body: too large: {len(body)} bytes (at most {MAX_BODY_BYTES})"
    )


def test_errors_list_every_field() -> None:
    with pytest.raises(JobSpecInvalid) as caught:
        parse_job_spec(json.dumps({"cpu": 3, "unknown": 1}))
    assert set(caught.value.fields) == {"command", "cpu", "unknown"}


# --- checks that need the deployment's settings ---------------------------------------------------


def deployment_errors(document: dict[str, Any], **deployment: Any) -> str:
    with pytest.raises(JobSpecInvalid) as caught:
        parse_job_spec(json.dumps(document), Deployment(**{"images": {"default"}, **deployment}))
    return str(caught.value)


def test_gpu_job_when_gpus_are_off() -> None:
    assert deployment_errors(spec(gpu=1, dedicated=True)) == (
        "invalid job spec: gpu: 1 GPU(s) requested but GPUs are off in this deployment (no GPU capacity provider)"
    )


def test_gpu_job_needs_a_gpu_image() -> None:
    message = deployment_errors(
        spec(gpu=1, dedicated=True, image="llm"), images={"default", "llm"}, gpu_images={"default"}, gpu_enabled=True
    )
    assert message == "invalid job spec: image: no GPU task definition for image 'llm'; allowed: default"


def test_unknown_image() -> None:
    message = deployment_errors(spec(image="nope"), images={"default", "big"})
    assert message == "invalid job spec: image: unknown image 'nope'; allowed: big, default"


def test_known_images_pass() -> None:
    assert parse_job_spec(spec(), Deployment(images={"default"})).image == "default"
    gpu = parse_job_spec(spec(gpu=2, dedicated=True), Deployment({"default"}, gpu_images={"default"}, gpu_enabled=True))
    assert gpu.gpu == 2


# --- every problem at once: cross-field and deployment rules come with the field errors -------------------------


def test_cross_field_errors_are_reported_with_field_errors() -> None:
    with pytest.raises(JobSpecInvalid) as caught:
        parse_job_spec(json.dumps({"command": "not-a-list", "cpu": 256, "memory": 8192, "gpu": 1, "extra": 1}))
    assert set(caught.value.fields) == {"command", "memory", "gpu", "extra"}
    assert "memory: 8192 MiB is not valid with cpu 256" in str(caught.value)
    assert "gpu: GPU jobs must set dedicated=true" in str(caught.value)


def test_deployment_errors_are_reported_with_field_errors() -> None:
    message = deployment_errors({"command": [], "gpu": 1, "dedicated": True, "memory": 1})
    assert "command: List should have at least 1 item" in message
    assert "memory: 1 MiB is not valid with cpu 1024" in message
    assert "gpu: 1 GPU(s) requested but GPUs are off" in message


def test_cross_field_rules_skip_fields_that_are_invalid_on_their_own() -> None:
    with pytest.raises(JobSpecInvalid) as caught:
        parse_job_spec(json.dumps(spec(cpu=300, memory="lots", gpu=True)))
    assert sorted(caught.value.fields) == ["cpu", "gpu", "memory"]  # one error each, no cross-field noise


def test_model_itself_enforces_the_cross_field_rules() -> None:
    with pytest.raises(ValidationError, match="memory: 8192 MiB is not valid with cpu 256"):
        JobSpec.model_validate(spec(cpu=256, memory=8192))


# --- ids ------------------------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=100))
def test_derived_job_ids_are_valid_and_deterministic(message_id: str) -> None:
    derived = derive_job_id(message_id)
    assert derived == derive_job_id(message_id)
    JobSpec.model_validate(spec(job_id=derived))


def test_derived_job_id_from_an_sqs_message_id() -> None:
    assert derive_job_id("059f36b4-87a3-44ab-83d2-661975830a7d") == "sqs-059f36b4-87a3-44ab-83d2-661975830a7d"


def test_guess_job_id_from_an_invalid_body() -> None:
    assert guess_job_id(json.dumps({"job_id": "ok-1", "cpu": "lots"})) == "ok-1"
    assert guess_job_id(json.dumps({"job_id": "not ok"})) is None
    assert guess_job_id("{broken") is None
    assert guess_job_id("[]") is None
