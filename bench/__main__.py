"""``python -m bench``: simulate every policy on every workload, print and write the tables."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from bench import sensitivity
from bench.models import Params
from bench.policies import POLICIES
from bench.policies.lower_bound import NAME as LOWER_BOUND
from bench.report import write
from bench.results import Result
from bench.runner import Case, run_cases
from bench.workloads import SYNTHETIC, TraceError, build

QUICK_HOURS = 2.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--workloads",
        default=",".join(SYNTHETIC),
        help=f"comma-separated, from {', '.join(SYNTHETIC)} (trace is added by --trace)",
    )
    parser.add_argument(
        "--trace", type=Path, help="CSV with header submit_time,duration,cpu,memory (s, s, cpu units, MiB)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hours", type=float, default=24.0, help="hours of traffic (default 24)")
    parser.add_argument("--out", type=Path, default=Path("bench-output"))
    parser.add_argument("--quick", action="store_true", help=f"small run ({QUICK_HOURS:g} h of traffic), as tests use")
    parser.add_argument("--policies", default=",".join(POLICIES), help="comma-separated subset of the policies")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="parallel simulations")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--params", action="store_true", help="list the model parameters and their sources")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--no-what-ifs", action="store_true", help="skip the sensitivity section")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.params:
        for name, default, doc in Params.describe():
            print(f"{name:<24} {default!s:<10} {doc}")
        return 0
    started = time.perf_counter()
    try:
        p = Params().with_overrides(args.overrides)
        names = [n.strip() for n in args.workloads.split(",") if n.strip()]
        if args.trace is not None and "trace" not in names:
            names.append("trace")
        policies = [n.strip() for n in args.policies.split(",") if n.strip()]
        unknown = [n for n in policies if n not in POLICIES]
        if unknown:
            raise ValueError(f"unknown policies {unknown} (choose from {', '.join(POLICIES)})")
        hours = QUICK_HOURS if args.quick else args.hours
        workloads = [build(name, p, args.seed, hours, args.trace) for name in names]
    except (ValueError, TraceError) as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2
    print(
        f"bench: {len(workloads)} workloads x {len(policies) + 1} policies, {hours:g} h of traffic, "
        f"seed {args.seed}, {args.processes} processes",
        file=sys.stderr,
    )
    cases = [Case(w.name, w, name, p) for w in workloads for name in [*policies, LOWER_BOUND]]
    what_if_cases = [] if args.no_what_ifs else sensitivity.cases(workloads, p, policies)
    done = run_cases(cases + what_if_cases, args.seed, args.processes)
    results: dict[str, dict[str, Result]] = {}
    for case, result in zip(cases, done, strict=False):
        results.setdefault(case.workload.name, {})[case.policy] = result
    what_ifs = list(zip(what_if_cases, done[len(cases) :], strict=True))
    overrides = ", ".join(args.overrides) or "none"
    header = (
        f"Seed {args.seed}; {hours:g} h of traffic per workload (burst500: one burst); parameter overrides: "
        f"{overrides}. Model parameters, defaults and sources: `python -m bench --params` and results.json."
    )
    settings = {"seed": args.seed, "hours": hours, "overrides": args.overrides, "workloads": names}
    text = write(
        args.out,
        workloads,
        results,
        header=header,
        settings=settings,
        p=p,
        what_ifs=what_ifs,
        plots=not args.no_plots,
    )
    print(text)
    print(f"bench: wrote {args.out}/results.md, results.json and PNGs in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
