"""The fault soak (`make soak`): the fault suite's simulation (tests/support/fault_sim.py) over
many seeds, thousands of runs in all, on the in-memory twins; prints the runs, deliveries and
faults injected, and every broken invariant with the seed that replays it.

    python -m bench.soak [--seeds N] [--runs-per-seed R] [--first-seed S]

Exits 1 when any invariant broke.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--runs-per-seed", type=int, default=150)
    parser.add_argument("--first-seed", type=int, default=1000)
    args = parser.parse_args(argv)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    logging.disable(logging.CRITICAL)  # one line per outcome is too much for thousands
    from tests.support.fault_sim import FaultSim  # noqa: PLC0415 - after the environment

    totals: Counter[str] = Counter()
    broken: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            sim = FaultSim(seed, args.runs_per_seed, Path(folder))
            totals.update(sim.run())
            broken += [f"seed {seed}: {violation}" for violation in sim.violations()]
    elapsed = time.monotonic() - started
    faults = {k.removeprefix("fault:"): v for k, v in totals.items() if k.startswith("fault:")}
    print(f"soak: {args.seeds} seeds ({args.first_seed}..{args.first_seed + args.seeds - 1}), "
          f"{totals['runs']} runs stored ({totals['accepted']} accepted by a trigger request, "
          f"{totals['triggerFailed']} trigger requests failed by a fault, failure-handler "
          f"runs), {elapsed:.0f} s")
    print(f"deliveries: {totals['deliveries']} step messages delivered "
          f"({totals['crashedDeliveries']} crashed, {totals['failedDeliveries']} failed), "
          f"{totals['deadLetters']} dead letters, {totals['stepMessagesSent']} sent "
          "(100 % sent twice: duplicates)")
    print(f"faults injected: {sum(faults.values())} ({faults.get('crash', 0)} crashes, "
          f"{faults.get('throttle', 0)} throttled calls, {faults.get('lost', 0)} lost answers); "
          f"cancels: {totals['cancelled']} accepted, {totals['cancelFailed']} refused or failed")
    print(f"invariants broken: {len(broken)}")
    for line in broken[:50]:
        print("  " + line)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
