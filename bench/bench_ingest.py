"""Ingest throughput through the CLI, shape by shape, against raw `sqlite3` executemany of the same rows.

Each shape is a JSONL file of events under the `rongcheng` policy, ingested into a SQLite
registry by `socialcredit ingest FILE --json` in a child process; the child's whole life is
timed (start-up, reading, validation, pseudonyms, canonical bodies, Merkle leaves, the
checkpoint, the materialized standings, the commit) with `time.perf_counter`, and its peak
resident memory read from `wait4`'s rusage (through a small launcher: see `LAUNCHER`).

    cold-2      100,000 subjects x 2 events, into a fresh registry
    cold-10      20,000 subjects x 10 events, into a fresh registry
    cold-100      2,000 subjects x 100 events, into a fresh registry
    appended    200,000 new events (2 each for 100,000 subjects already there) appended to a
                registry that already holds 1,000,000 events (10 each), which is built first
                from ONE 1M-event file through the same CLI: its time and peak memory are
                reported too (`base_seconds`, `base_peak_rss_mb`: the streaming figure)

(`--events N` sets the size of the timed file, `--base N` the appended shape's registry.)
Events are drawn from the pack's catalogue with the town's rates (`socialcredit.sim.town`),
at random instants over the last three years (the appended batch: over the last 90 days,
after everything already in the registry), and the file is in time order.

The anchor, in the same run: the rows the registry wrote for the timed file (SELECTed out of
its database afterwards) inserted by the standard library's `sqlite3` `executemany` into a
plain table of the same ten columns (no indexes or constraints), WAL + synchronous=FULL, one
transaction; only the executemany and the commit are timed. The same rows are inserted
again into a table made by the registry's own `entries` DDL (its primary key, the unique
(provider, key) a dedupe needs and the (subject, seq) index a history is read by), so the
line shows what SQLite alone takes to store them as the ledger must (`indexed_anchor_*`):
a ceiling for any ingest through it, before a byte is validated, hashed or scored.

Prints one JSON line per shape on stdout; progress goes to stderr.

    python bench/bench_ingest.py                    # every shape, full size (a few minutes)
    python bench/bench_ingest.py --shapes cold-2    # one shape
    python bench/bench_ingest.py --quick            # small sizes, for tests and CI
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, note
from socialcredit.instants import US_PER_SECOND, format_instant, now_us
from socialcredit.ledger.entries import EVENT
from socialcredit.policy.load import load_policy
from socialcredit.sim.town import DAY_US, NOT_DRAWN, PERSON_RATES, _attributes, _follow_up_types, build_subjects

GOAL_EVENTS_PER_SECOND = 100_000
SHAPES = {"cold-2": 2, "cold-10": 10, "cold-100": 100, "appended": 2}
BASE_PER_SUBJECT = 10
YEAR_US = 365 * DAY_US

ANCHOR_SCHEMA = (
    "CREATE TABLE entries (seq INTEGER, kind TEXT, recorded_us INTEGER, provider TEXT, key TEXT, "
    "subject TEXT, type TEXT, occurred_us INTEGER, body TEXT, leaf_hash BLOB)"
)
ANCHOR_INSERT = (
    "INSERT INTO entries (seq, kind, recorded_us, provider, key, subject, type, occurred_us, body, leaf_hash) "
    "VALUES (?,?,?,?,?,?,?,?,?,?)"
)


def draw(policy, subjects, per_subject: int, start_us: int, end_us: int, prefix: str,
         rng: random.Random) -> list[dict]:
    """`per_subject` events for each subject, types weighted by the town's rates, in time order."""
    follow_ups = _follow_up_types(policy)
    types = [t for t, spec in policy.event_types.items()
             if t not in follow_ups and t not in NOT_DRAWN and "person" in spec.subject_kinds]
    weights = [PERSON_RATES.get(t, 0.01) for t in types]
    span = end_us - start_us
    events = []
    for subject in subjects:
        for event_type in rng.choices(types, weights, k=per_subject):
            occurred = start_us + int(rng.random() * span)
            events.append({"subject": subject.ref, "subject_kind": subject.kind, "type": event_type,
                           "occurred_at": format_instant(occurred - occurred % US_PER_SECOND),
                           "provider": event_type.split(".", 1)[0] + "-registry", "key": "",
                           "attributes": _attributes(policy, event_type, rng)})
    events.sort(key=lambda e: e["occurred_at"])
    for number, event in enumerate(events):
        event["key"] = f"{prefix}-{number:08d}"
    return events


def write_jsonl(events: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event, separators=(",", ":")) + "\n")


# The child's peak memory must be its own: Linux carries a process's peak resident size over
# fork and exec (a child spawned by this process, which holds the generated events, reports
# this process's peak). So a small launcher, started afresh, forks the CLI and reports the
# rusage of that child alone.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "socialcredit", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\nmaxrss_kb={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def cli_measured(env: dict, *args: str) -> tuple[float, float, str]:
    """Run `socialcredit ARGS` in a child: (seconds, its peak resident MB, stdout)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *args], env=env, capture_output=True)
    seconds = time.perf_counter() - started
    stderr = done.stderr.decode()
    if done.returncode != 0:
        raise SystemExit(f"socialcredit {' '.join(args)} failed ({done.returncode}): {stderr[-2000:]}")
    peak_kb = int(stderr.rsplit("maxrss_kb=", 1)[1].split()[0])
    return seconds, peak_kb / 1024, done.stdout.decode()


def ledger_schema(db: Path) -> list[str]:
    """The registry's own `entries` table and its indexes, as its database holds them (no triggers)."""
    with sqlite3.connect(db) as conn:
        return [sql for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'entries' AND type IN ('table', 'index') "
            "AND sql IS NOT NULL ORDER BY type DESC")]


def anchor(rows: list[tuple], path: Path, schema: list[str] | None = None) -> float:
    """Seconds to executemany `rows` into a plain table (or the one `schema` makes) and commit
    (WAL, synchronous=FULL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        for statement in schema or [ANCHOR_SCHEMA]:
            conn.execute(statement)
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


def run_shape(shape: str, policy, events_n: int, base_n: int, end_us: int, seed: int, folder: Path,
              quick: bool) -> dict:
    rng = random.Random(f"{seed}-{shape}")
    per_subject = SHAPES[shape]
    db = folder / f"{shape}.db"
    env = {**os.environ, "SOCIALCREDIT_DB": f"sqlite:///{db}", "SOCIALCREDIT_KEY_FILE": str(folder / f"{shape}.key"),
           "COLUMNS": "120"}
    cli_measured(env, "init", "--policy", policy.id, "--json")
    base_events, base_seconds, base_peak_mb = 0, None, None
    if shape == "appended":
        subjects = build_subjects(rng, max(1, events_n // per_subject), 0)
        history = draw(policy, subjects, BASE_PER_SUBJECT * max(1, base_n // (BASE_PER_SUBJECT * len(subjects))),
                       end_us - 4 * YEAR_US, end_us - 90 * DAY_US, "base", rng)[:base_n]
        base_events = len(history)
        path = folder / "base.jsonl"
        write_jsonl(history, path)
        del history
        base_seconds, base_peak_mb, _ = cli_measured(env, "ingest", str(path), "--json")
        path.unlink()
        note(f"{shape}: a registry of {base_events:,} events for {len(subjects):,} subjects built from one file "
             f"in {base_seconds:.1f}s, peak {base_peak_mb:,.0f} MB")
        events = draw(policy, subjects, per_subject, end_us - 90 * DAY_US, end_us - DAY_US, "new", rng)
    else:
        subjects = build_subjects(rng, max(1, events_n // per_subject), 0)
        events = draw(policy, subjects, per_subject, end_us - 3 * YEAR_US, end_us - DAY_US, "cold", rng)
    path = folder / f"{shape}.jsonl"
    write_jsonl(events, path)
    with sqlite3.connect(db) as conn:
        (before,) = conn.execute("SELECT count(*) FROM entries").fetchone()
    note(f"{shape}: ingesting {len(events):,} events for {len(subjects):,} subjects through the CLI...")
    seconds, peak_mb, stdout = cli_measured(env, "ingest", str(path), "--json")
    result = json.loads(stdout)
    if result["accepted"] != len(events) or result["rejected"]:
        raise SystemExit(f"{shape}: ingest accepted {result['accepted']} of {len(events)}: {result['errors'][:1]}")
    note(f"{shape}: {len(events):,} events in {seconds:.2f}s = {len(events) / seconds:,.0f}/s, peak {peak_mb:,.0f} MB")
    source = sqlite3.connect(db)
    try:
        rows = source.execute(
            "SELECT seq, kind, recorded_us, provider, key, subject, type, occurred_us, body, leaf_hash "
            "FROM entries WHERE seq >= ? AND kind = ? ORDER BY seq", (before, EVENT)).fetchall()
        (standings,) = source.execute("SELECT count(*) FROM standings").fetchone()
        (standing_bytes,) = source.execute("SELECT coalesce(sum(length(body)), 0) FROM standings").fetchone()
    finally:
        source.close()
    if len(rows) != len(events):
        raise SystemExit(f"{shape}: read back {len(rows)} rows, expected {len(events)}")
    anchor_seconds = anchor(rows, folder / f"{shape}-anchor.db")
    indexed_seconds = anchor(rows, folder / f"{shape}-anchor-indexed.db", ledger_schema(db))
    for leftover in folder.glob(f"{shape}*"):
        leftover.unlink()
    events_per_second = len(events) / seconds
    anchor_rows_per_second = len(rows) / anchor_seconds
    return {
        "bench": "ingest",
        "shape": shape,
        "policy": policy.id,
        "events": len(events),
        "subjects": len(subjects),
        "events_per_subject": per_subject,
        "base_events": base_events,
        "events_per_second": round(events_per_second),
        "anchor_rows_per_second": round(anchor_rows_per_second),
        "ratio": round(events_per_second / anchor_rows_per_second, 4),
        "seconds": round(seconds, 3),
        "anchor_seconds": round(anchor_seconds, 3),
        "indexed_anchor_rows_per_second": round(len(rows) / indexed_seconds),  # the same rows, the ledger's indexes
        "indexed_anchor_seconds": round(indexed_seconds, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "base_seconds": None if base_seconds is None else round(base_seconds, 3),
        "base_peak_rss_mb": None if base_peak_mb is None else round(base_peak_mb, 1),
        "folded_incrementally": result.get("folded_incrementally"),  # subjects (absent before issue 9's fold)
        "folded_whole": result.get("folded_whole"),
        "standings": standings,
        "standing_bytes_per_subject": round(standing_bytes / max(standings, 1), 1),
        "goal_events_per_second": GOAL_EVENTS_PER_SECOND,
        "meets_goal": events_per_second >= GOAL_EVENTS_PER_SECOND,
        "quick": quick,
        "seed": seed,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policy", default="rongcheng", help="pack name (default rongcheng)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--events", type=int, help="events in each timed file (default 200,000)")
    parser.add_argument("--base", type=int, help="events already in the appended shape's registry (default 1,000,000)")
    parser.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the temporary databases go")
    args = parser.parse_args(argv)
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shape {unknown[0]!r} (shapes: {', '.join(SHAPES)})")
    events_n = args.events or (3_000 if args.quick else 200_000)
    base_n = args.base or (10_000 if args.quick else 1_000_000)
    policy = load_policy(args.policy)
    end_us = now_us() - now_us() % DAY_US
    reports = []
    with tempfile.TemporaryDirectory(prefix="socialcredit-bench-ingest-", dir=args.tmpdir) as folder:
        for shape in shapes:
            reports.append(emit(run_shape(shape, policy, events_n, base_n, end_us, args.seed, Path(folder),
                                          args.quick)))
    return reports


if __name__ == "__main__":
    main()
