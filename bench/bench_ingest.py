"""Ingest throughput: `Registry.ingest` against a bare `sqlite3` executemany of the same rows.

A synthetic town (20,000 residents and 500 businesses by default) gets a year of events from
`socialcredit.sim.town.generate_events`; further years (earlier ones, with their own keys) are
generated until there are at least 200,000 events. They go into a fresh SQLite registry under
the `rongcheng` policy in ONE `Registry.ingest` call, timed with `time.perf_counter`: that
call does everything (validation, pseudonyms, canonical bodies, Merkle leaves, checkpoint,
materialized standings, commit).

Then a further batch of 10,000 new events for subjects already in the ledger is ingested and
timed on its own (`incremental_events_per_second`): there every touched subject's history is
read back and folded again.

The anchor: the very rows the registry wrote for the first batch (SELECTed out of its
database after the run) inserted with the standard library's `sqlite3` `executemany` into a
plain table of the same columns (no indexes, no constraints), WAL + synchronous=FULL, one
transaction. Only the executemany and the commit are timed.

Prints exactly one JSON line on stdout; progress goes to stderr.

    python bench/bench_ingest.py            # full size (about half a minute)
    python bench/bench_ingest.py --quick    # a few seconds, for tests and CI
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import emit, note, profiled
from socialcredit.instants import now_us
from socialcredit.ledger.entries import EVENT
from socialcredit.policy.load import load_policy
from socialcredit.registry import Registry
from socialcredit.sim.town import DAY_US, build_subjects, generate_events

GOAL_EVENTS_PER_SECOND = 50_000
YEAR_US = 365 * DAY_US

ANCHOR_SCHEMA = (
    "CREATE TABLE entries (seq INTEGER, kind TEXT, recorded_us INTEGER, provider TEXT, key TEXT, "
    "subject TEXT, type TEXT, occurred_us INTEGER, body TEXT, leaf_hash BLOB)"
)
ANCHOR_INSERT = (
    "INSERT INTO entries (seq, kind, recorded_us, provider, key, subject, type, occurred_us, body, leaf_hash) "
    "VALUES (?,?,?,?,?,?,?,?,?,?)"
)



def town_events(policy, residents: int, businesses: int, min_events: int, end_us: int, rng: random.Random):
    """Subjects, and years of their events (oldest year first) until there are `min_events`.

    Each year is a fresh draw from `generate_events` (same subjects, new propensities), keyed
    `y<years back>-<n>` so that no two events share a (provider, key).
    """
    subjects = build_subjects(rng, residents, businesses)
    years: list[list[dict]] = []
    total = 0
    while total < min_events:
        back = len(years)
        year = generate_events(policy, subjects, end_us - (back + 1) * YEAR_US, end_us - back * YEAR_US, rng)
        if not year:
            raise SystemExit("the town produced no events; use more residents")
        for event in year:
            event["key"] = f"y{back}-{event['key']}"
        years.append(year)
        total += len(year)
    events = [event for year in reversed(years) for event in year]  # oldest first, each year sorted
    return subjects, events, len(years)


def incremental_events(policy, subjects, events: list[dict], count: int, end_us: int,
                       rng: random.Random) -> list[dict]:
    """`count` new events (new keys) for subjects the ledger already holds, in time order."""
    held = {(e["subject"], e["subject_kind"]) for e in events}
    subjects = [s for s in subjects if (s.ref, s.kind) in held]
    pool: list[dict] = []
    while len(pool) < count:  # a small town may need more than one more year
        pool += generate_events(policy, subjects, end_us - YEAR_US, end_us, rng)
    chosen = rng.sample(pool, count)
    chosen.sort(key=lambda e: e["occurred_at"])
    for number, event in enumerate(chosen):
        event["key"] = f"inc-{number:07d}"
    return chosen


def anchor(rows: list[tuple], path: Path) -> float:
    """Seconds to executemany `rows` into a plain table and commit (WAL, synchronous=FULL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(ANCHOR_SCHEMA)
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(ANCHOR_INSERT, rows)
        conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        (count,) = conn.execute("SELECT count(*) FROM entries").fetchone()
        if count != len(rows):
            raise SystemExit(f"anchor wrote {count} rows, expected {len(rows)}")
        return seconds
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policy", default="rongcheng", help="pack name or TOML file (default rongcheng)")
    parser.add_argument("--residents", type=int)
    parser.add_argument("--businesses", type=int)
    parser.add_argument("--min-events", type=int, help="generate years of events until at least this many")
    parser.add_argument("--incremental", type=int, help="size of the second, incremental batch")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile the timed region, print the top N functions by tottime to stderr")
    parser.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the temporary databases go")
    args = parser.parse_args(argv)
    residents = args.residents or (1_000 if args.quick else 20_000)
    businesses = args.businesses if args.businesses is not None else (25 if args.quick else 500)
    min_events = args.min_events or (5_000 if args.quick else 200_000)
    incremental = args.incremental or (500 if args.quick else 10_000)

    policy = load_policy(args.policy)
    rng = random.Random(args.seed)
    end_us = now_us() - now_us() % DAY_US
    started = time.perf_counter()
    subjects, events, years = town_events(policy, residents, businesses, min_events, end_us, rng)
    extra = incremental_events(policy, subjects, events, incremental, end_us, rng)
    in_ledger = len({(e["subject"], e["subject_kind"]) for e in events})
    note(f"{len(events):,} events ({years} years) for {in_ledger:,} of {len(subjects):,} subjects, "
         f"+{len(extra):,} incremental; generated in {time.perf_counter() - started:.1f}s")

    with tempfile.TemporaryDirectory(prefix="socialcredit-bench-ingest-", dir=args.tmpdir) as folder:
        db = Path(folder) / "registry.db"
        registry = Registry.init(f"sqlite:///{db}", policy, key_file=Path(folder) / "registry.db.key")
        try:
            first_seq = registry.size()
            note("ingesting the town...")
            t0 = time.perf_counter()
            with profiled(args.profile, "the town's ingest"):
                result = registry.ingest(events)
            seconds = time.perf_counter() - t0
            if result.errors or result.accepted != len(events):
                raise SystemExit(f"ingest refused events: accepted {result.accepted}, first error "
                                 f"{result.errors[:1]}")
            base_size = result.ledger_size
            note(f"{result.accepted:,} events in {seconds:.2f}s = {result.accepted / seconds:,.0f}/s")

            note("ingesting the incremental batch...")
            t0 = time.perf_counter()
            with profiled(args.profile, "the incremental ingest"):
                more = registry.ingest(extra)
            incremental_seconds = time.perf_counter() - t0
            if more.errors or more.accepted != len(extra):
                raise SystemExit(f"incremental ingest refused events: {more.errors[:1]}")
            touched = len({(e["subject"], e["subject_kind"]) for e in extra})
            note(f"{more.accepted:,} events ({touched:,} subjects) in {incremental_seconds:.2f}s "
                 f"= {more.accepted / incremental_seconds:,.0f}/s")
            standings = registry.store.standings.tier_counts()
        finally:
            registry.close()

        source = sqlite3.connect(db)
        try:
            rows = source.execute(
                "SELECT seq, kind, recorded_us, provider, key, subject, type, occurred_us, body, leaf_hash "
                "FROM entries WHERE seq >= ? AND seq < ? AND kind = ? ORDER BY seq",
                (first_seq, base_size, EVENT),
            ).fetchall()
        finally:
            source.close()
        if len(rows) != len(events):
            raise SystemExit(f"read back {len(rows)} rows, expected {len(events)}")
        note("anchor: sqlite3 executemany of the same rows...")
        anchor_seconds = anchor(rows, Path(folder) / "anchor.db")
        note(f"{len(rows):,} rows in {anchor_seconds:.2f}s = {len(rows) / anchor_seconds:,.0f}/s")

    events_per_second = len(events) / seconds
    anchor_rows_per_second = len(rows) / anchor_seconds
    report = {
        "bench": "ingest",
        "policy": policy.id,
        "events": len(events),
        "subjects": in_ledger,
        "events_per_subject": round(len(events) / in_ledger, 2),
        "events_per_second": round(events_per_second),
        "anchor_rows_per_second": round(anchor_rows_per_second),
        "ratio": round(events_per_second / anchor_rows_per_second, 4),
        "seconds": round(seconds, 3),
        "anchor_seconds": round(anchor_seconds, 3),
        "incremental_events": len(extra),
        "incremental_subjects": touched,
        "incremental_events_per_second": round(len(extra) / incremental_seconds),
        "incremental_seconds": round(incremental_seconds, 3),
        "standings": sum(standings.values()),
        "goal_events_per_second": GOAL_EVENTS_PER_SECOND,
        "meets_goal": events_per_second >= GOAL_EVENTS_PER_SECOND,
        "quick": args.quick,
        "profiled": bool(args.profile),
        "seed": args.seed,
    }
    return emit(report)


if __name__ == "__main__":
    main()
