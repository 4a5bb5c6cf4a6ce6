"""The TRAIN_* environment every job's process gets, on every path (pure; contract with the training code).

TRAIN_JOB_ID, TRAIN_ATTEMPT, TRAIN_CHECKPOINT_URI (the spec's, or the job's default prefix), TRAIN_ARTIFACTS_URI,
and for a child of an array job or sweep TRAIN_ARRAY_INDEX and TRAIN_PARENT_ID. The job's own variables come
first; names with the TRAIN_ prefix are reserved (jobs.jobspec), so the system's values cannot be overridden.
"""

from __future__ import annotations

from jobs.jobspec import JobSpec


def job_environment(spec: JobSpec, *, attempt: int, bucket: str) -> dict[str, str]:
    """The job's variables plus the TRAIN_* variables of this attempt. `spec.job_id` must be set."""
    if spec.job_id is None:
        raise ValueError("job_environment needs a spec with a job_id")
    job_id = spec.job_id
    return {
        **spec.environment,
        "TRAIN_JOB_ID": job_id,
        "TRAIN_ATTEMPT": str(attempt),
        "TRAIN_CHECKPOINT_URI": spec.default_checkpoint_uri(bucket),
        "TRAIN_ARTIFACTS_URI": f"s3://{bucket}/jobs/{job_id}/",
        **array_environment(spec),
    }


def array_environment(spec: JobSpec) -> dict[str, str]:
    """TRAIN_ARRAY_INDEX and TRAIN_PARENT_ID for a child (nothing for other jobs); set by the system."""
    if spec.parent_id is None or spec.array_index is None:
        return {}
    return {"TRAIN_ARRAY_INDEX": str(spec.array_index), "TRAIN_PARENT_ID": spec.parent_id}
