"""One command's wall time: `socialcredit check` as a process, against `python -c pass`.

Two SQLite registries under the `rongcheng` pack: a small one (100 entries) and a large one
(1,000,000 entries over 100,000 residents, ingested in batches, not timed; `--quick`: 20,000).
Then, in the same run and interleaved, each of these is started as a new process `--runs`
times (default 15) and its wall time taken with `time.perf_counter` around
`subprocess.run`:

- the anchor: `python -c pass` with the same interpreter (what any Python command costs);
- `socialcredit check RESIDENT transport.rail.high_speed --json` on the small registry;
- the same on the large registry (opening must cost the same whatever the ledger's size);
- `socialcredit standing RESIDENT --json` on the large registry.

Medians and the fastest run are reported in seconds; the goal is a check within 0.3 s.

Prints exactly one JSON line on stdout; progress goes to stderr.

    python bench/bench_command.py            # full size (about a minute to build)
    python bench/bench_command.py --quick    # a few seconds, for tests and CI
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, note
from socialcredit.instants import format_instant, now_us
from socialcredit.registry import Registry
from socialcredit.sim.town import DAY_US

GOAL_SECONDS = 0.3
BATCH = 100_000


def build(url: str, entries: int, residents: int) -> None:
    """A registry of `entries` entries: the activation, then traffic records spread over residents."""
    start = now_us() - now_us() % DAY_US - 360 * DAY_US
    with Registry.init(url, "rongcheng") as registry:
        for first in range(0, entries - 1, BATCH):
            batch = [{"subject": f"resident{i % residents}", "type": "traffic.violation",
                      "occurred_at": format_instant(start + (i % 350) * DAY_US), "provider": "police",
                      "key": f"t{i}", "attributes": {}}
                     for i in range(first, min(first + BATCH, entries - 1))]
            result = registry.ingest(batch)
            if result.errors:
                raise SystemExit(f"ingest refused events: {result.errors[:1]}")
            note(f"  {result.ledger_size:,} entries")


def wall_times(commands: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Each command `runs` times, interleaved so that machine noise falls on all alike."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALCREDIT_")}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, env=env)
            times[name].append(time.perf_counter() - started)
            if done.returncode not in (0, 3):
                raise SystemExit(f"{name} failed: {done.stderr.decode()[-500:]}")
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument("--entries", type=int, help="entries in the large registry (default 1,000,000)")
    parser.add_argument("--runs", type=int, help="runs of each command (default 15)")
    parser.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the temporary databases go")
    args = parser.parse_args(argv)
    large = args.entries or (20_000 if args.quick else 1_000_000)
    runs = args.runs or (3 if args.quick else 15)
    socialcredit = [sys.executable, "-m", "socialcredit"]

    with tempfile.TemporaryDirectory(prefix="socialcredit-bench-command-", dir=args.tmpdir) as folder:
        small_url, large_url = f"sqlite:///{folder}/small.db", f"sqlite:///{folder}/large.db"
        note("building the small registry (100 entries)")
        build(small_url, 100, 50)
        note(f"building the large registry ({large:,} entries)")
        build(large_url, large, max(large // 10, 50))
        commands = {
            "python_pass": [sys.executable, "-c", "pass"],
            "check_small": [*socialcredit, "--db", small_url, "check", "resident7", "transport.rail.high_speed",
                            "--json"],
            "check_large": [*socialcredit, "--db", large_url, "check", "resident7", "transport.rail.high_speed",
                            "--json"],
            "standing_large": [*socialcredit, "--db", large_url, "standing", "resident7", "--json"],
        }
        times = wall_times(commands, runs)

    medians = {name: statistics.median(values) for name, values in times.items()}
    report = {
        "bench": "command",
        "large_entries": large,
        "runs": runs,
        **{f"{name}_median_s": round(value, 3) for name, value in medians.items()},
        **{f"{name}_fastest_s": round(min(values), 3) for name, values in times.items()},
        "check_over_python": round(medians["check_small"] - medians["python_pass"], 3),
        "large_over_small": round(medians["check_large"] / medians["check_small"], 2),
        "goal_seconds": GOAL_SECONDS,
        "meets_goal": medians["check_large"] <= GOAL_SECONDS,
        "quick": args.quick,
    }
    return emit(report)


if __name__ == "__main__":
    main()
