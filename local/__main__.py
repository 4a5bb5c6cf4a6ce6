"""``python -m local [--jobs N] [--seed S] [--out DIR]``: the local demo (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from local.scenario import DemoFailed, Scenario, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--jobs", type=int, default=8, help="training jobs in the burst (1..40, default 8)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the job sizes (default 1)")
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default demo-output)")
    parser.add_argument("--timeout", type=float, default=150.0, help="give up after this many seconds (default 150)")
    args = parser.parse_args(argv)
    if not 1 <= args.jobs <= 40:
        parser.error("--jobs must be between 1 and 40")
    try:
        record = run(Scenario(jobs=args.jobs, seed=args.seed, timeout_s=args.timeout), args.out)
    except DemoFailed as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: everything the demo started has been stopped", file=sys.stderr)
        return 130
    return 0 if not record["lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
