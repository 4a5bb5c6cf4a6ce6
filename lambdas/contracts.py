"""Names the infrastructure (`cdk_app`) and the runtime share: defined once here, imported by both.

Standard library only and free of imports, so synth can import it without pulling in any runtime code.
"""

from __future__ import annotations

from typing import Final

# --- the jobs table (cdk_app/jobs_table.py creates it; aws/job_store.py reads and writes it) ---
TABLE_PARTITION_KEY: Final = "pk"
STATE_INDEX: Final = "by-state"
"""Global secondary index: partition key `state`, sort key `updated_at`."""
STATE_ATTRIBUTE: Final = "state"
UPDATED_AT_ATTRIBUTE: Final = "updated_at"
RENDEZVOUS_ATTRIBUTE: Final = "rendezvous"
"""Rank 0 of a distributed job publishes its address here (jobs/gang.py)."""
RENDEZVOUS_ATTRIBUTES: Final = (TABLE_PARTITION_KEY, "attempt", RENDEZVOUS_ATTRIBUTE)
"""What a rank of a distributed job may read and write in its job's item (the task role's IAM condition)."""

# --- training tasks ---
CONTAINER_NAME: Final = "trainer"
"""The training container's name in every training task definition (RunTask overrides name it)."""
RENDEZVOUS_PORTS: Final = (29400, 29999)
"""Inclusive port range the ranks of a distributed job reach each other on (the task security group's rule)."""
EPHEMERAL_PORTS: Final = "29500 29999"
"""Training tasks' ``net.ipv4.ip_local_port_range``, inside RENDEZVOUS_PORTS (peer connections of gloo/NCCL)."""

# --- queues: the `queue` attribute of a job record names the path its job takes ---
DISPATCH_QUEUE: Final = "dispatch"
"""Dedicated tasks: one RunTask per job (or per rank), by the submitter."""
WORKER_QUEUE: Final = "worker"
"""The worker service's queue: long-running workers take jobs one at a time."""

# --- the scaler's nudge event (EventBridge rule pattern and the scaler's trigger parser) ---
NUDGE_SOURCE: Final = "training-autoscaler"
NUDGE_DETAIL_TYPE: Final = "Scale Nudge"
