"""A rebuild's scoring on Spark local[2] against the in-process engine, on the same Parquet export.

A Rongcheng town (sim/town.py) is ingested into a scratch SQLite registry and exported
(registry/export.py). Then, on the same export and at the same instant:

- in process: the export's ledger rows read with pyarrow, grouped by subject, and scored by
  the in-process engine (the columnar batch engine when it is registered, else the fold), on
  one core;
- on Spark: `score_export` on local[2] (two executor cores), from reading the Parquet to
  writing the standings' Parquet; the session is started before the clock starts (its start
  is reported apart: a cluster pays it once per job, not per subject), and the job is run
  twice: the first (reported apart) also starts the executors' Python workers, the second is
  the one timed.

The export itself (registry to Parquet, one process) is timed too (`export_seconds`). Both
sides' standings are compared subject by subject (`equal`). Per-core throughput is
events (ledger rows with a subject) per second divided by the cores used: it is the figure
docs/scale.md scales from.

    python bench/bench_spark.py            # 40,000 residents (~100,000 events)
    python bench/bench_spark.py --quick    # 2,000 residents
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from _common import emit, note
from socialcredit.instants import now_us
from socialcredit.ledger.entries import Entry
from socialcredit.registry import Registry
from socialcredit.scoring.engine import engine_named
from socialcredit.scoring.spark import inner_engine, read_standings, score_export, spark_session
from socialcredit.sim.town import DAY_US, build_subjects, generate_events


def build(folder: Path, residents: int, businesses: int, seed: int) -> tuple[Registry, int]:
    registry = Registry.init(f"sqlite:///{folder / 'bench.db'}", "rongcheng", key_file=folder / "bench.key")
    rng = random.Random(seed)
    end = now_us() - DAY_US
    events = generate_events(registry.policy, build_subjects(rng, residents, businesses), end - 365 * DAY_US, end,
                             rng)
    for start in range(0, len(events), 50_000):
        registry.ingest(events[start:start + 50_000])
    return registry, len(events)


def in_process(folder: Path, policy, at_us: int, engine_name: str) -> tuple[float, dict]:
    import pyarrow.dataset as ds

    started = time.perf_counter()
    table = ds.dataset(folder / "ledger", format="parquet").to_table(columns=["subject", "seq", "body"])
    table = table.filter(table.column("subject").is_valid()).sort_by([("subject", "ascending"), ("seq", "ascending")])
    histories: dict[str, list[Entry]] = {}
    for subject, body in zip(table.column("subject").to_pylist(), table.column("body").to_pylist()):
        histories.setdefault(subject, []).append(Entry.from_body(json.loads(body)))
    standings = dict(engine_named(engine_name).compact_standings(policy, histories.items(), at_us))
    return time.perf_counter() - started, standings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small town, for the tests")
    parser.add_argument("--residents", type=int, default=None)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    residents = args.residents or (2_000 if args.quick else 40_000)
    cores = int(args.master[6:-1]) if args.master.startswith("local[") and args.master[6:-1].isdigit() else None
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as scratch:
        folder = Path(scratch)
        note(f"building a town of {residents} residents")
        registry, events = build(folder, residents, residents // 30, args.seed)
        policy = registry.policy
        started = time.perf_counter()
        registry.export(folder / "export")
        export_s = time.perf_counter() - started
        subjects = registry.count_subjects()
        rows = registry.size()
        registry.close()
        at = now_us()
        engine_name = inner_engine()
        note(f"{events} events, {subjects} subjects; in process ({engine_name})")
        local_s, expected = in_process(folder / "export", policy, at, engine_name)
        note("starting Spark")
        started = time.perf_counter()
        spark, created = spark_session(args.master, "bench-spark")
        start_s = time.perf_counter() - started
        note("scoring on Spark (a first job starts the Python workers; the second is timed)")
        started = time.perf_counter()
        score_export(spark, policy, folder / "export", at, folder / "first", inner=engine_name)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        score_export(spark, policy, folder / "export", at, folder / "out", inner=engine_name)
        spark_s = time.perf_counter() - started
        on_spark = dict(read_standings(folder / "out"))
        if created:
            spark.stop()
    scored = sum(1 for _ in expected)
    emit({
        "bench": "spark",
        "policy": "rongcheng",
        "subjects": subjects,
        "events": events,
        "ledger_entries": rows,
        "master": args.master,
        "inner_engine": engine_name,
        "export_seconds": round(export_s, 2),
        "export_rows_per_second": round(rows / export_s),
        "spark_start_seconds": round(start_s, 2),
        "spark_first_job_seconds": round(first_s, 2),
        "spark_seconds": round(spark_s, 2),
        "in_process_engine": engine_name,
        "in_process_seconds": round(local_s, 2),
        "spark_events_per_second": round(events / spark_s),
        "spark_events_per_core_second": round(events / spark_s / cores) if cores else None,
        "in_process_events_per_core_second": round(events / local_s),
        "ratio": round(spark_s / local_s, 3),
        "equal": on_spark == expected and scored == subjects,
    })


if __name__ == "__main__":
    main()
