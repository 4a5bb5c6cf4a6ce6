"""The worker: long-poll the worker queue, run one job per slot, record every state change in the jobs table.

Per message:

1. Validate (JobSpec, internal attributes, worker-queue rules). A bad message is REJECTED with its reason:
   recorded in the jobs table, copied to WORKER_DLQ_URL with a ``reason`` attribute, deleted from the queue.
2. Claim: create the job record if absent, then the conditional transition SUBMITTED/RETRYING -> RUNNING
   (RETRYING starts attempt + 1). A job RUNNING elsewhere with a fresh lease is a duplicate delivery: the
   message is hidden again and left alone. A RUNNING job whose lease (``updated_at``, renewed on every
   heartbeat) went stale lost its worker: it is moved to RETRYING and taken over. A finished job's message is
   deleted.
3. Run: a heartbeat extends the message's visibility and renews the lease (and sees cancel requests); the
   command runs with the job's environment and timeout. The task is scale-in protected from receipt to the end.
4. Finish: SUCCEEDED -> delete the message. Failure -> RETRYING with a backoff (the message becomes visible
   again later) until ``max_attempts`` failures, then FAILED -> delete. Timeout / command not found ->
   FAILED -> delete. Cancel -> CANCELLED -> delete. SIGTERM -> the job gets the grace to checkpoint, then
   RETRYING with the reason and the message back on the queue at once (visibility 0).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any

from aws.job_store import DynamoJobStore
from contracts import WORKER_QUEUE as QUEUE_NAME
from jobs.children import size_of
from jobs.environment import job_environment
from jobs.errors import FieldError, JobSpecInvalid, JobStateConflict
from jobs.jobspec import JobSpec, derive_job_id, guess_job_id, parse_job_spec
from jobs.messages import JOB_ID, REASON, read_dispatch_attributes
from jobs.record import JobRecord
from jobs.retries import MAX_INTERRUPTIONS, after_failure, after_interruption
from jobs.retry_rules import EXIT, Stop, evaluate
from jobs.states import JobState
from jobs.timeutil import parse_iso, utcnow
from lifecycle.finished import job_finished
from worker.process import Outcome, Result, supervise
from worker.protection import ProtectionKeeper
from worker.settings import WorkerSettings

log = logging.getLogger("worker")

WORKER_OOM = "the job ran out of the worker's memory; submit it with dedicated: true and a larger `memory`"
MAX_REASON_CHARS = 1000


def clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def check_worker_queue(spec: JobSpec) -> None:
    """Rules of the worker queue: commands run inside the worker's own image, on Fargate (no GPUs)."""
    errors = []
    if spec.dedicated:
        errors.append(FieldError("dedicated", "dedicated jobs belong on the dispatch queue, not the worker queue"))
    if size_of(spec):
        errors.append(FieldError("array", "array jobs and sweeps go to the dispatch queue (it enqueues the children)"))
    if spec.image != "default":
        errors.append(
            FieldError("image", f"the worker queue runs the worker image only; set dedicated: true for {spec.image!r}")
        )
    if errors:
        raise JobSpecInvalid(errors)


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


@dataclass
class Message:
    message_id: str
    receipt: str
    body: str
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_sqs(cls, raw: Mapping[str, Any]) -> Message:
        return cls(
            message_id=str(raw["MessageId"]),
            receipt=str(raw["ReceiptHandle"]),
            body=str(raw.get("Body") or ""),
            attributes=raw.get("MessageAttributes") or {},
        )


class Worker:
    """Runs until SIGTERM (``request_stop``), or when idle / after ``max_jobs`` if so configured."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        sqs: Any,
        store: DynamoJobStore,
        protection: ProtectionKeeper,
        base_env: Mapping[str, str],
        sink: IO[bytes],
        task_arn: str | None = None,
        clock: Callable[[], datetime] = utcnow,
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
                raw = self.sqs.receive_message(
                    QueueUrl=self.settings.queue_url,
                    MaxNumberOfMessages=1,
                    WaitTimeSeconds=self.settings.wait_seconds,
                    VisibilityTimeout=self.settings.visibility_seconds,
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception as exc:
                self._unreserve()
                log.error("ReceiveMessage failed: %s; retrying in %g s", exc, self.error_backoff_s)
                self.stopping.wait(self.error_backoff_s)
                continue
            if not raw:
                self._unreserve()
                if self.settings.exit_when_idle:
                    return
                continue
            message = Message.from_sqs(raw[0])
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
        job_id = spec.job_id or derive_job_id(message.message_id)
        if spec.job_id is None:
            spec = spec.model_copy(update={"job_id": job_id})
        _, job = self.store.create_if_absent(
            job_id,
            state=JobState.SUBMITTED,
            attempt=meta.attempt,
            now=self.clock(),
            spec=spec.to_json(),
            queue=QUEUE_NAME,
        )
        running = self._claim(job, message)
        if running is not None:
            self._run(running, spec, message)

    def _claim(self, job: JobRecord, message: Message) -> JobRecord | None:
        """The job moved to RUNNING for this worker, or None when the message was dealt with otherwise."""
        for _ in range(5):
            try:
                return self._claim_once(job, message)
            except JobStateConflict as conflict:
                log.info("job %s changed meanwhile (%s); re-reading", job.job_id, conflict)
                current = conflict.current or self.store.get(job.job_id)
                if current is None:
                    return None
                job = current
        log.warning("job %s keeps changing; leaving its message for later", job.job_id)
        return None

    def _claim_once(self, job: JobRecord, message: Message) -> JobRecord | None:
        now = self.clock()
        if job.terminal:
            log.info("job %s is already %s: deleting its duplicate message", job.job_id, job.state)
            self._delete(message)
            return None
        if job.state in (JobState.RUNNING, JobState.DISPATCHED):
            if job.state == JobState.RUNNING and job.queue == QUEUE_NAME and self._lease_stale(job, now):
                lost = after_interruption(job.interruptions)
                why = f"worker lost: no heartbeat since {job.updated_at}"
                job = self.store.transition(
                    job.job_id,
                    JobState.FAILED if lost.give_up else JobState.RETRYING,
                    expected_states=JobState.RUNNING,
                    expected_attempt=job.attempt,
                    now=now,
                    reason=f"{why}; gave up after {MAX_INTERRUPTIONS} interruptions"
                    if lost.give_up
                    else f"{why}; taken over by another worker",
                    interruptions=lost.count,
                )
                log.warning("job %s attempt %d: %s", job.job_id, job.attempt, job.reason)
                if lost.give_up:
                    self._finished(job)
                    self._delete(message)
                    return None
            else:
                log.info("job %s is %s elsewhere: leaving this duplicate delivery alone", job.job_id, job.state)
                self._set_visibility(message, self.settings.visibility_seconds, "duplicate delivery")
                return None
        if job.cancel_requested:
            cancelled = self.store.transition(
                job.job_id,
                JobState.CANCELLED,
                expected_states=job.state,
                expected_attempt=job.attempt,
                now=now,
                reason="cancelled before it started",
            )
            self._finished(cancelled)
            self._delete(message)
            return None
        attempt = job.attempt + 1 if job.state == JobState.RETRYING else job.attempt
        resumed = f"attempt {attempt} after: {job.reason}" if job.state == JobState.RETRYING and job.reason else None
        return self.store.transition(
            job.job_id,
            JobState.RUNNING,
            expected_states=job.state,
            expected_attempt=job.attempt,
            now=now,
            reason=resumed and clip(resumed),
            attempt=attempt,
            task_arn=self.task_arn or self.protection.client.task_arn,
            queue=QUEUE_NAME,
            exit_code=None,
        )

    def _lease_stale(self, job: JobRecord, now: datetime) -> bool:
        if not job.updated_at:
            return True
        return now - parse_iso(job.updated_at) > timedelta(seconds=self.settings.lease_stale_seconds)

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
                current = self.store.annotate(
                    job.job_id,
                    expected_states=JobState.RUNNING,
                    expected_attempt=job.attempt,
                    now=self.clock(),
                    reason=job.reason,
                )
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
        outcome, code = result.outcome, result.exit_code
        if outcome == Outcome.ABANDONED:
            return  # another worker owns the job now; its record and message are not ours to touch
        if code == 0:
            state, reason, delay = JobState.SUCCEEDED, None, None
            extra: dict[str, Any] = {}
        elif outcome == Outcome.CANCELLED:
            state, reason, delay, extra = JobState.CANCELLED, f"cancelled on request ({result.detail})", None, {}
        elif outcome == Outcome.INTERRUPTED:
            verdict = after_interruption(job.interruptions)
            extra = {"interruptions": verdict.count}
            what = (
                f"interrupted: worker {self.stop_reason or 'stopping'} (Spot interruption, scale-in or deploy); "
                f"the job was asked to checkpoint ({result.detail})"
            )
            if verdict.give_up:
                state, delay, reason = JobState.FAILED, None, f"{what}; gave up after {MAX_INTERRUPTIONS} interruptions"
            else:
                state, delay = JobState.RETRYING, 0
                reason = f"{what}; requeued at once (interruption {verdict.count} of {MAX_INTERRUPTIONS})"
        elif outcome == Outcome.TIMED_OUT:
            reason = f"timed out after timeout_seconds={spec.timeout_seconds} ({result.detail}); not retried"
            state, delay, extra = JobState.FAILED, None, {}
        elif outcome == Outcome.NOT_STARTED:
            state, reason, delay, extra = JobState.FAILED, f"{result.detail}; not retried", None, {}
        elif (
            rule := evaluate(spec.retry_rules, Stop(code, None, result.detail), oom_advice=WORKER_OOM)
        ).action == EXIT:
            state, delay, extra = JobState.FAILED, None, {"failures": job.failures + 1}
            reason = f"attempt {job.attempt} failed with {result.detail}; {rule.why}"
        else:
            base_delay = self.settings.retry_delay_seconds
            failed = after_failure(job.failures, spec.max_attempts, base_delay_seconds=base_delay)
            extra = {"failures": failed.count}
            if failed.give_up:
                state, delay = JobState.FAILED, None
                reason = (
                    f"{result.detail}; gave up after {failed.count} failed attempt(s) "
                    f"(max_attempts={spec.max_attempts})"
                )
            else:
                state, delay = JobState.RETRYING, failed.delay_seconds
                reason = (
                    f"attempt {job.attempt} failed with {result.detail}; retrying in {delay} s "
                    f"({failed.count} of max_attempts={spec.max_attempts} failures)"
                )
        try:
            finished = self.store.transition(
                job.job_id,
                state,
                expected_states=JobState.RUNNING,
                expected_attempt=job.attempt,
                now=self.clock(),
                reason=reason and clip(reason),
                exit_code=code,
                **extra,
            )
        except JobStateConflict as conflict:
            log.error("job %s attempt %d: could not record %s (%s)", job.job_id, job.attempt, state, conflict)
            return
        self._finished(finished)
        if delay is None:
            self._delete(message)
        else:
            self._set_visibility(message, delay, f"{state} (next attempt in {delay} s)")

    # -- rejection -------------------------------------------------------------------------------------------------

    def _reject(self, message: Message, reason: str) -> None:
        """DLQ copy first (with the reason), then the REJECTED record, then delete: a crash in between repeats
        the steps (a duplicate DLQ copy at worst), never loses the reason."""
        reason = clip(reason)
        job_id = guess_job_id(message.body) or derive_job_id(message.message_id)
        log.warning("message %s rejected (job %s): %s", message.message_id, job_id, reason)
        if self.settings.dlq_url:
            self.sqs.send_message(
                QueueUrl=self.settings.dlq_url,
                MessageBody=message.body or "(empty body)",
                MessageAttributes={
                    REASON: {"DataType": "String", "StringValue": reason},
                    JOB_ID: {"DataType": "String", "StringValue": job_id},
                    "source_message_id": {"DataType": "String", "StringValue": message.message_id},
                },
            )
        now = self.clock()
        created, job = self.store.create_if_absent(
            job_id,
            state=JobState.REJECTED,
            attempt=1,
            now=now,
            queue=QUEUE_NAME,
            reason=reason,
            body=message.body[:4096],
        )
        if created:
            self._finished(job)
        elif job.state == JobState.SUBMITTED and job.attempt == 1:
            # e.g. trainctl or a sweep's fan-out recorded it, then the worker's own rules refused it
            with contextlib.suppress(JobStateConflict):
                self._finished(
                    self.store.transition(
                        job_id, JobState.REJECTED, expected_states=job.state, expected_attempt=1, now=now, reason=reason
                    )
                )
        self._delete(message)

    def _finished(self, record: JobRecord) -> None:
        """A job this worker ended: its EMF metric line on stdout (ECS awslogs delivers it to CloudWatch as EMF)
        and its count on a sweep's parent (lifecycle.finished; the task-events reconcile pass covers a failure)."""
        with contextlib.suppress(Exception):
            job_finished(self.store, record, self.clock(), emit=self._emit)

    def _emit(self, line: str) -> None:
        self.sink.write(line.encode() + b"\n")
        self.sink.flush()

    # -- SQS -------------------------------------------------------------------------------------------------------

    def _delete(self, message: Message) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.settings.queue_url, ReceiptHandle=message.receipt)
        except Exception as exc:  # a stale receipt: the job record already says what happened
            log.warning("DeleteMessage %s failed: %s", message.message_id, exc)

    def _set_visibility(self, message: Message, seconds: int, why: str) -> None:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.settings.queue_url, ReceiptHandle=message.receipt, VisibilityTimeout=seconds
            )
        except Exception as exc:  # e.g. past SQS's 12-hour limit: the job's lease in the table still holds
            log.warning("ChangeMessageVisibility(%d) for %s (%s) failed: %s", seconds, message.message_id, why, exc)
