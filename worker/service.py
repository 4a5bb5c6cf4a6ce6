"""The worker: long-poll the worker queue, run one job per slot; the job lifecycle records every state change.

Per message:

1. Validate (JobSpec, internal attributes, worker-queue rules). A bad message is REJECTED with its reason:
   recorded in the jobs table, copied to WORKER_DLQ_URL with a ``reason`` attribute (lifecycle.reject), deleted.
2. Take the job (lifecycle.worker_jobs.take): RUNNING for this worker -> run it; already finished (or cancelled
   before it started) -> delete the message; running elsewhere -> hide the message again for a visibility period.
3. Run: a heartbeat extends the message's visibility and renews the job's lease (and sees cancel requests); the
   command runs with the job's environment and timeout. The task is scale-in protected from receipt to the end.
4. Finish (lifecycle.worker_jobs.after_attempt): ended -> delete the message; retried -> the message becomes
   visible again after the retry's delay (at once after SIGTERM, which gives the job the grace to checkpoint).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

from aws.sqs import SqsSender
from contracts import WORKER_QUEUE
from jobs.environment import job_environment
from jobs.errors import JobSpecInvalid, JobStateConflict
from jobs.jobspec import JobSpec, derive_job_id, parse_job_spec
from jobs.messages import read_dispatch_attributes
from jobs.record import JobRecord
from jobs.timeutil import utcnow
from lifecycle.outcomes import Retry
from lifecycle.ports import Clock, JobStore
from lifecycle.reject import reject
from lifecycle.worker_jobs import Delivery, Outcome, Result, after_attempt, record_end, renew_lease, take
from worker import queue
from worker.process import supervise
from worker.protection import ProtectionKeeper
from worker.queue import Message, check_worker_queue
from worker.settings import WorkerSettings

log = logging.getLogger("worker")


def process_environment(
    base: Mapping[str, str], spec: JobSpec, *, job_id: str, attempt: int, bucket: str
) -> dict[str, str]:
    """The job process's environment: the worker's own (credentials endpoint, PATH ...) minus its settings, then
    the job's variables and the TRAIN_* variables every job gets (jobs.environment)."""
    own = {"JOBS_TABLE_NAME", "ARTIFACTS_BUCKET", "LOG_LEVEL"}
    env = {k: v for k, v in base.items() if not k.startswith(("WORKER_", "TRAIN_")) and k not in own}
    env.update(job_environment(spec.model_copy(update={"job_id": job_id}), attempt=attempt, bucket=bucket))
    return env


def task_arn_from_metadata(metadata_uri: str | None, *, timeout_s: float = 2.0) -> str | None:
    """This task's ARN from the ECS task metadata endpoint v4 (None off ECS or on any error)."""
    if not metadata_uri:
        return None
    try:
        with urllib.request.urlopen(metadata_uri.rstrip("/") + "/task", timeout=timeout_s) as response:
            arn = json.loads(response.read()).get("TaskARN")
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("task metadata unavailable: %s", exc)
        return None
    return str(arn) if arn else None


@dataclass
class JobFlags:
    """Set by the heartbeat thread, read by the supervisor loop."""

    cancel: bool = False
    abandoned: bool = False


class Worker:
    """Runs until SIGTERM (``request_stop``), or when idle / after ``max_jobs`` if so configured."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        sqs: Any,
        store: JobStore,
        protection: ProtectionKeeper,
        base_env: Mapping[str, str],
        sink: IO[bytes],
        task_arn: str | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self.settings = settings
        self.sqs = sqs
        self.store = store
        self.protection = protection
        self.base_env = dict(base_env)
        self.sink = sink
        self.task_arn = task_arn
        self.clock = clock
        self.stopping = threading.Event()
        self.stop_reason = ""
        self._lock = threading.Lock()
        self._taken = 0
        self.error_backoff_s = 5.0

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def request_stop(self, reason: str) -> None:
        """Stop taking work; running jobs are asked to checkpoint and are requeued (safe in a signal handler)."""
        if not self.stopping.is_set():
            self.stop_reason = reason
            self.stopping.set()

    def run(self) -> None:
        """Run ``concurrency`` polling slots until they all end."""
        log.info(
            "worker started: queue %s, %d slot(s), grace %d s",
            self.settings.queue_url,
            self.settings.concurrency,
            self.settings.grace_seconds,
        )
        slots = [
            threading.Thread(target=self._slot, name=f"slot-{i}", daemon=True) for i in range(self.settings.concurrency)
        ]
        for slot in slots:
            slot.start()
        for slot in slots:
            while slot.is_alive():
                slot.join(timeout=0.5)  # short joins keep the main thread responsive to signals
        self.protection.close()
        log.info("worker stopped%s", f" ({self.stop_reason})" if self.stop_reason else "")

    def _reserve(self) -> bool:
        with self._lock:
            if self.settings.max_jobs and self._taken >= self.settings.max_jobs:
                return False
            self._taken += 1
            return True

    def _unreserve(self) -> None:
        with self._lock:
            self._taken -= 1

    def _slot(self) -> None:
        while not self.stopping.is_set() and self._reserve():
            try:
                message = queue.receive(self.sqs, self.settings)
            except Exception as exc:
                self._unreserve()
                log.error("ReceiveMessage failed: %s; retrying in %g s", exc, self.error_backoff_s)
                self.stopping.wait(self.error_backoff_s)
                continue
            if message is None:
                self._unreserve()
                if self.settings.exit_when_idle:
                    return
                continue
            if self.stopping.is_set():
                self._set_visibility(message, 0, "shutting down before starting it")
                return
            try:
                self.handle(message)
            except Exception:
                log.exception(
                    "message %s not handled; it returns to the queue when its visibility times out",
                    message.message_id,
                )

    # -- one message -------------------------------------------------------------------------------------------

    def handle(self, message: Message) -> None:
        """Deal with one received message; the task is scale-in protected from receipt to the end."""
        self.protection.acquire()
        try:
            self._handle(message)
        finally:
            self.protection.release()

    def _handle(self, message: Message) -> None:
        try:
            meta = read_dispatch_attributes(message.attributes)
            spec = parse_job_spec(message.body)
            check_worker_queue(spec)
        except JobSpecInvalid as exc:
            self._reject(message, str(exc))
            return
        if spec.job_id is None:
            spec = spec.model_copy(update={"job_id": derive_job_id(message.message_id)})
        taken = take(
            self.store,
            spec,
            attempt=meta.attempt,
            clock=self.clock,
            task_arn=self.task_arn or self.protection.client.task_arn,
            lease_stale_seconds=self.settings.lease_stale_seconds,
            emit=self._emit,
        )
        if taken.delivery == Delivery.RUN and taken.job is not None:
            self._run(taken.job, spec, message)
        elif taken.delivery == Delivery.DROP:
            self._delete(message)
        elif taken.delivery == Delivery.HIDE:
            self._set_visibility(message, self.settings.visibility_seconds, "duplicate delivery")
        # Delivery.LEAVE: the message returns to the queue when its visibility times out

    def _run(self, job: JobRecord, spec: JobSpec, message: Message) -> None:
        flags = JobFlags()
        stop_beating = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat,
            args=(job, message, flags, stop_beating),
            name=f"heartbeat-{job.job_id}",
            daemon=True,
        )
        workdir = tempfile.mkdtemp(prefix=f"job-{job.job_id}-", dir=self.settings.job_dir)
        try:
            heartbeat.start()
            log.info("job %s attempt %d: running %s", job.job_id, job.attempt, spec.command)

            def check() -> Outcome | None:
                if flags.abandoned:
                    return Outcome.ABANDONED
                if flags.cancel:
                    return Outcome.CANCELLED
                return Outcome.INTERRUPTED if self.stopping.is_set() else None

            result = supervise(
                spec.command,
                env=process_environment(
                    self.base_env, spec, job_id=job.job_id, attempt=job.attempt, bucket=self.settings.artifacts_bucket
                ),
                cwd=workdir,
                timeout_s=spec.timeout_seconds,
                grace_s=self.settings.grace_seconds,
                check=check,
                prefix=f"{job.job_id}#{job.attempt}",
                sink=self.sink,
            )
            stop_beating.set()
            heartbeat.join()
            log.info("job %s attempt %d: %s (%s)", job.job_id, job.attempt, result.outcome, result.detail)
            self._finish(job, spec, message, result)
        finally:
            stop_beating.set()
            shutil.rmtree(workdir, ignore_errors=True)

    def _heartbeat(self, job: JobRecord, message: Message, flags: JobFlags, stop: threading.Event) -> None:
        while not stop.wait(self.settings.heartbeat_seconds):
            self._set_visibility(message, self.settings.visibility_seconds, "heartbeat")
            try:
                current = renew_lease(self.store, job, self.clock())
            except JobStateConflict as conflict:
                log.error("job %s attempt %d is no longer ours (%s): stopping it", job.job_id, job.attempt, conflict)
                flags.abandoned = True
                return
            except Exception as exc:  # the table is unreachable: keep running, the next beat retries
                log.warning("job %s: lease renewal failed: %s", job.job_id, exc)
                continue
            if current.cancel_requested and not flags.cancel:
                log.info("job %s: cancel requested; stopping it", job.job_id)
                flags.cancel = True

    def _finish(self, job: JobRecord, spec: JobSpec, message: Message, result: Result) -> None:
        decision = after_attempt(
            job, spec, result, stop_reason=self.stop_reason, retry_delay_seconds=self.settings.retry_delay_seconds
        )
        if decision is None:
            return  # another worker owns the job now; its record and message are not ours to touch
        if record_end(self.store, job, decision, self.clock(), emit=self._emit) is None:
            return
        if isinstance(decision, Retry):
            delay = decision.delay_seconds
            self._set_visibility(message, delay, f"RETRYING (next attempt in {delay} s)")
        else:
            self._delete(message)

    def _reject(self, message: Message, reason: str) -> None:
        """The job REJECTED with its reason and the message copied to the DLQ (lifecycle.reject), then deleted."""
        job_id = reject(
            store=self.store,
            queues=SqsSender(self.sqs),
            clock=self.clock,
            dlq_url=self.settings.dlq_url,
            queue=WORKER_QUEUE,
            message_id=message.message_id,
            body=message.body,
            reason=reason,
            emit=self._emit,
        )
        log.warning("message %s rejected (job %s): %s", message.message_id, job_id, reason)
        self._delete(message)

    def _emit(self, line: str) -> None:
        """A finished job's metric line on the output stream; a failure to write it never stops the message's own
        handling (deleted, or made visible again after the retry delay), which the job's record already decided."""
        try:
            self.sink.write(line.encode() + b"\n")
            self.sink.flush()
        except Exception as exc:
            log.warning("could not write a metric line: %s", exc)

    def _delete(self, message: Message) -> None:
        queue.delete(self.sqs, self.settings.queue_url, message)

    def _set_visibility(self, message: Message, seconds: int, why: str) -> None:
        queue.set_visibility(self.sqs, self.settings.queue_url, message, seconds, why)
