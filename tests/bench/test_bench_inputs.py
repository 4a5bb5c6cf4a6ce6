"""Workload generators, the trace-file loader, and the parameter models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.aws import Queue
from bench.models import Params, TokenBucket, take_all
from bench.sim import JobRun, Message, Sim
from bench.workloads import PHILLY_CDF, TraceError, build, load_trace, philly_durations, rng_for

P = Params()


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_trace_file_loads_sorted_and_becomes_a_workload(tmp_path: Path) -> None:
    path = _csv(tmp_path, "submit_time,duration,cpu,memory\n60,300,1024,2048\n0,3600,4096,16384\n\n")
    assert load_trace(path) == [(0.0, 3600.0, 4096, 16384), (60.0, 300.0, 1024, 2048)]
    w = build("trace", P, 1, 24, path)
    assert [(j.submit, j.duration, j.vcpu, j.gb) for j in w.jobs] == [(0, 3600, 4, 16), (60, 300, 1, 2)]


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("submit,duration,cpu,memory\n0,1,1024,2048\n", 1, "header must be submit_time,duration,cpu,memory"),
        ("submit_time,duration,cpu,memory\n0,60,1024,2048\n5,abc,1024,2048\n", 3, "duration must be a number"),
        ("submit_time,duration,cpu,memory\n0,60,1024\n", 2, "expected 4 fields, got 3"),
        ("submit_time,duration,cpu,memory\n0,60,1024,2048\n1,0,1024,2048\n", 3, "duration must be > 0"),
        ("submit_time,duration,cpu,memory\n-5,60,1024,2048\n", 2, "submit_time must be >= 0"),
        ("submit_time,duration,cpu,memory\n0,nan,1024,2048\n", 2, "duration must be finite"),
        ("submit_time,duration,cpu,memory\n0,60,1000,2048\n", 2, "cpu 1000 is not a Fargate size"),
        ("submit_time,duration,cpu,memory\n0,60,1024.5,2048\n", 2, "cpu must be a whole number"),
        ("submit_time,duration,cpu,memory\n0,60,256,4096\n", 2, "memory 4096 MiB does not fit cpu 256"),
    ],
)
def test_malformed_trace_is_rejected_naming_the_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = _csv(tmp_path, body)
    with pytest.raises(TraceError) as caught:
        load_trace(path)
    assert f"{path} line {line}:" in str(caught.value)
    assert message in str(caught.value)


def test_trace_that_is_not_utf8_csv_is_rejected_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"submit_time,duration,cpu,memory\n0,60,1024,2048\n# caf\xe9\n")
    with pytest.raises(TraceError) as caught:
        load_trace(path)
    assert str(caught.value).startswith(f"{path}: not UTF-8 text")
    huge = _csv(tmp_path, "submit_time,duration,cpu,memory\n0,60,1024," + "2" * 200_000 + "\n")
    with pytest.raises(TraceError) as caught:
        load_trace(huge)
    assert str(caught.value).startswith(f"{huge} line 2: not valid CSV")


def test_trace_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfsubmit_time,duration,cpu,memory\r\n0,60,1024,2048\r\n")
    assert load_trace(path) == [(0.0, 60.0, 1024, 2048)]


def test_trace_without_jobs_or_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no jobs after the header"):
        load_trace(_csv(tmp_path, "submit_time,duration,cpu,memory\n"))
    with pytest.raises(TraceError, match="cannot read"):
        load_trace(tmp_path / "missing.csv")


def test_philly_durations_follow_the_published_percentiles() -> None:
    d = philly_durations(rng_for(3, "philly"), 200_000, cap_s=1e7)
    for seconds, share in PHILLY_CDF[1:-1]:
        assert abs(float(np.mean(d <= seconds)) - share) < 0.01, seconds
    assert philly_durations(rng_for(3, "philly"), 10_000, cap_s=86400).max() <= 86400


def test_synthetic_workloads_have_the_documented_shape() -> None:
    steady = build("steady", P, 5, 24)
    assert abs(len(steady.jobs) - P.steady_per_h * 24) < 4 * np.sqrt(P.steady_per_h * 24)
    assert abs(np.median([j.duration for j in steady.jobs]) - P.short_median_s) < 15
    burst = build("burst500", P, 5, 24)
    assert len(burst.jobs) == 500 and len({j.submit for j in burst.jobs}) == 1
    assert burst.burst_at == burst.jobs[0].submit
    for w in (steady, build("bursty", P, 5, 24), build("heavy_tail", P, 5, 24)):
        submits = [j.submit for j in w.jobs]
        assert submits == sorted(submits) and submits[0] >= 0 and submits[-1] < w.window_s
    with pytest.raises(ValueError, match="unknown workload"):
        build("nope", P, 5, 24)


def test_start_latency_has_the_documented_median_and_tail() -> None:
    x = P.start_latency(rng_for(1, "latency"), 400_000)
    p50, p99 = np.percentile(x, [50, 99])
    assert abs(p50 - P.start_median_s) < 0.3
    assert abs(p99 / p50 - P.start_p99_ratio) < 0.05


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(burst=3, rate=2)
    assert [take_all(0.0, [bucket]) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert take_all(0.0, [bucket]) == pytest.approx(0.5)  # empty: next token in 1/rate s
    assert take_all(0.5, [bucket]) == 0.0
    other = TokenBucket(burst=1, rate=1)
    other.take(0.5)
    assert take_all(0.5, [bucket, other]) > 0  # one empty bucket blocks the call ...
    assert bucket.wait(0.5) == pytest.approx(0.5)  # ... and takes nothing from the others


def test_live_queue_reads_lag_by_the_configured_time() -> None:
    p = P.with_overrides(["queue_read_lag_s=60"])
    sim = Sim()
    queue = Queue(sim, p, max_receive=5)
    sim.at(10.0, queue.send, Message(JobRun(build("burst500", P, 1, 1).jobs[0])))
    seen: list[tuple[float, tuple[int, int, int]]] = []
    for t in (5.0, 30.0, 69.0, 71.0):
        sim.at(t, lambda: seen.append((sim.now, queue.read_counts())))
    sim.at(80.0, queue.receive)
    sim.at(100.0, lambda: seen.append((sim.now, queue.read_counts())))
    sim.at(141.0, lambda: seen.append((sim.now, queue.read_counts())))
    sim.run(until=200.0)
    assert seen == [
        (5.0, (0, 0, 0)),
        (30.0, (0, 0, 0)),  # sent at 10 s: not seen for 60 s
        (69.0, (0, 0, 0)),
        (71.0, (1, 0, 0)),
        (100.0, (1, 0, 0)),  # received at 80 s: still shown as visible
        (141.0, (0, 1, 0)),
    ]
    assert Queue(Sim(), P, max_receive=5).read_counts() == (0, 0, 0)  # default: exact, no lag


def test_params_overrides_are_typed_and_checked() -> None:
    p = P.with_overrides(["spot_hazard_per_h=0.02", "esm_max_concurrency=10"])
    assert (p.spot_hazard_per_h, p.esm_max_concurrency) == (0.02, 10)
    with pytest.raises(ValueError, match="unknown parameter"):
        P.with_overrides(["no_such=1"])
    with pytest.raises(ValueError, match="esm_max_concurrency needs an integer"):
        P.with_overrides(["esm_max_concurrency=1.5"])
    assert all(doc for _, _, doc in Params.describe())
