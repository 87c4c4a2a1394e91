"""Rebuild at population scale: the batch engine's kernel against DuckDB, same events, same run.

A Rongcheng population (1M subjects with 10 events each by default) is generated as columns,
the way the kernel takes the ledger (scoring/batch/__init__.py: subject, seq, kind, type,
occurred_us, the `severity` attribute the rules match on). Event types are drawn from the
pack's rules, times uniformly over the 3.5 years before `at`; within a subject, seq follows
occurred_at (as a ledger written in time order has it).

Timed, each on the same columns in the same process:

- batch: `score_columns(policy, columns, at, workers=threads)`, the whole standing of every subject as columns
  (score, tier, dimensions, measures with their ends and reasons, the ranked reasons, the
  validity interval); subjects it folded one by one are counted (`fallback_subjects`, 0 for
  Rongcheng). Turning the columns into CompactStanding objects for every subject (per-subject
  Python, done when standings are written: `result.standings()`) is timed once, apart.
- duckdb: the same Rongcheng score in SQL (points, lifetimes in calendar months on the
  Shanghai calendar, the monthly and yearly caps, the drunk-driving score cap, the 0..2000
  bounds, tiers) over the same arrays (DuckDB scans the NumPy arrays in place). Shanghai has
  kept +08:00 since 1991, so the SQL adds a fixed 8 hours for local time; the generated times
  are all after 2022.

Both sides get the same threads (`--threads`, default the machine's cores): the kernel cuts
the subjects into that many runs, DuckDB is told `SET threads`. Each side runs `--repeat`
times (2 by default), alternately, and the best run of each is compared; every run is in the
JSON. The first run of the kernel in a process pays for fresh memory (page faults on some
hundred MB of new arrays), which the later ones reuse.
- fold: `compact(fold(...))` for a random sample of subjects from their Entry histories,
  scaled to the population (`fold_seconds_scaled`, `fold_sampled_subjects`).

Checks, in the run: the batch's score and tier equal DuckDB's for every subject; the batch's
whole CompactStanding equals the fold's for every sampled subject. A mismatch is counted in
the JSON (and the exit code is 1).

    python bench/bench_batch.py            # 1M subjects, 10M events
    python bench/bench_batch.py --quick    # 20,000 subjects, 200,000 events
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from _common import emit, note, profiled
from socialcredit.instants import parse_instant
from socialcredit.ledger.entries import EVENT, Entry
from socialcredit.policy.load import load_policy
from socialcredit.scoring.batch import score_columns
from socialcredit.scoring.compact import compact
from socialcredit.scoring.fold import fold

AT = parse_instant("2026-06-01T00:00:00Z")
SPAN_US = int(3.5 * 365 * 86_400 * 1_000_000)
SEVERITIES = ["minor", "moderate", "serious"]


def generate(policy, subjects: int, per_subject: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    type_names = sorted({rule.event for rule in policy.rules})
    n = subjects * per_subject
    subject = np.repeat(np.arange(subjects, dtype=np.int64), per_subject)
    occurred = AT - rng.integers(0, SPAN_US, n, dtype=np.int64)
    order = np.lexsort((occurred, subject))  # seq in time order within a subject
    occurred = occurred[order]
    # civic acts and traffic tickets are the common records; grave ones are rare
    weights = np.array([8.0 if t.startswith(("civic.", "traffic.violation", "utility.late")) else
                        (3.0 if t.startswith(("finance.bank", "commerce.other")) else 1.0) for t in type_names])
    type_code = rng.choice(len(type_names), n, p=weights / weights.sum()).astype(np.int64)
    severity_code = rng.integers(0, 3, n, dtype=np.int64)
    dishonesty = type_names.index("commerce.other_dishonesty")
    severity_code = np.where(type_code == dishonesty, severity_code, -1)
    return {
        "subjects": [f"s{i}" for i in range(subjects)],
        "subject": subject,
        "seq": np.arange(1, n + 1, dtype=np.int64),
        "kind": np.zeros(n, dtype=np.int8),
        "target": np.full(n, -1, dtype=np.int64),
        "type": type_code,
        "type_names": type_names,
        "occurred_us": occurred,
        "attributes": {"severity": (severity_code, SEVERITIES)},
    }


def duckdb_scores(policy, columns: dict, threads: int) -> tuple[np.ndarray, np.ndarray, float]:
    import duckdb

    type_names = columns["type_names"]
    rows = []
    for r, rule in enumerate(policy.rules):
        severity = dict(rule.match).get("severity")
        sev = "NULL" if severity is None else str(SEVERITIES.index(next(iter(severity))))
        cap_count = "NULL" if rule.cap_count is None else str(rule.cap_count)
        cap_unit = {"P1M": "'month'", "P1Y": "'year'", "P1D": "'day'", "P1W": "'week'", None: "NULL"}[rule.cap_period]
        score_cap = "NULL" if rule.score_cap is None else repr(float(rule.score_cap))
        assert rule.lifetime.micros == 0 and rule.half_life_us is None  # Rongcheng: whole years, no decay
        rows.append(f"({r}, {type_names.index(rule.event)}, {sev}, {float(rule.points)!r}, {rule.lifetime.months}, "
                    f"{cap_count}, {cap_unit}, {score_cap})")
    events = {"subject": columns["subject"], "seq": columns["seq"], "type": columns["type"],
              "occurred_us": columns["occurred_us"], "severity": columns["attributes"]["severity"][0]}
    tiers = " ".join(f"WHEN score >= {t.min!r} THEN {i}" for i, t in enumerate(policy.tiers) if t.min is not None)
    bottom = next((i for i, t in enumerate(policy.tiers) if t.min is None), -1)
    scale = policy.scale
    sql = f"""
    WITH rules(rule, type, severity, points, months, cap_count, cap_unit, score_cap) AS (VALUES {", ".join(rows)}),
    happened AS (
        SELECT e.subject, e.seq, e.occurred_us, r.rule, r.points, r.months, r.cap_count, r.cap_unit, r.score_cap,
               make_timestamp(e.occurred_us + 28800000000) AS local_time          -- Asia/Shanghai, +08:00
        FROM events e JOIN rules r ON e.type = r.type AND (r.severity IS NULL OR e.severity = r.severity)
        WHERE e.occurred_us <= {AT}),
    kept AS (
        SELECT * FROM happened WHERE cap_count IS NULL
        UNION ALL
        SELECT * EXCLUDE (n) FROM (
            SELECT *, row_number() OVER (PARTITION BY subject, rule, date_trunc(cap_unit, local_time)
                                         ORDER BY occurred_us, seq) AS n
            FROM happened WHERE cap_count IS NOT NULL) WHERE n <= cap_count),
    counting AS (
        SELECT subject, points, score_cap FROM kept
        WHERE epoch_us(local_time + to_months(months)) - 28800000000 > {AT}),
    sums AS (
        SELECT subject, sum(points) AS points, min(score_cap) AS score_cap FROM counting GROUP BY subject),
    scored AS (
        SELECT subject, least(greatest({float(scale.base)!r} + coalesce(points, 0), {float(scale.min)!r}),
                              {float(scale.max)!r}, coalesce(score_cap, 'inf'::DOUBLE)) AS score
        FROM sums)
    SELECT subject, floor(score + 0.5) AS score, CASE {tiers} ELSE {bottom} END AS tier FROM scored
    """
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    started = time.perf_counter()
    result = con.execute(sql).fetchnumpy()
    seconds = time.perf_counter() - started
    n = len(columns["subjects"])
    score = np.full(n, float(scale.base))  # subjects with no counting record: the base score ...
    tier = np.full(n, next(i for i, t in enumerate(policy.tiers) if t.min is None or scale.base >= t.min))
    score[result["subject"]] = result["score"]
    tier[result["subject"]] = result["tier"]
    return score, tier, seconds


def entries_of(columns: dict, s: int) -> list[Entry]:
    lo, hi = np.searchsorted(columns["subject"], [s, s + 1])
    codes, values = columns["attributes"]["severity"]
    names = columns["type_names"]
    out = []
    for row in range(lo, hi):
        attributes = {} if codes[row] < 0 else {"severity": values[codes[row]]}
        occurred = int(columns["occurred_us"][row])
        out.append(Entry(int(columns["seq"][row]), EVENT, occurred, columns["subjects"][s], "person",
                         names[int(columns["type"][row])], occurred, "bench", str(row), attributes))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--events-per-subject", type=int, default=10)
    parser.add_argument("--fold-sample", type=int, default=2_000, help="subjects folded one by one, then scaled")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=0, help="for both sides (default: the machine's cores)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side; the best is compared")
    parser.add_argument("--quick", action="store_true", help="20,000 subjects (tests, CI)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile the batch kernel, top N")
    args = parser.parse_args()
    if args.quick:
        args.subjects, args.fold_sample = 20_000, 500
    policy = load_policy("rongcheng")
    note(f"generating {args.subjects:,} subjects x {args.events_per_subject} events")
    columns = generate(policy, args.subjects, args.events_per_subject, args.seed)
    events = len(columns["seq"])

    threads = args.threads or os.cpu_count() or 1
    batch_runs, duck_runs = [], []
    for run in range(args.repeat):  # alternately, so that neither side has the machine to itself
        note(f"batch kernel, {threads} threads (run {run + 1} of {args.repeat})")
        with profiled(args.profile if run == 0 else 0, "the batch kernel"):
            started = time.perf_counter()
            result = score_columns(policy, columns, AT, workers=threads)
            batch_runs.append(time.perf_counter() - started)
        note(f"duckdb, {threads} threads (run {run + 1} of {args.repeat})")
        duck_score, duck_tier, seconds = duckdb_scores(policy, columns, threads)
        duck_runs.append(seconds)
    batch_seconds, duck_seconds = min(batch_runs), min(duck_runs)
    score_mismatches = int(np.count_nonzero(result.score != duck_score))
    tier_mismatches = int(np.count_nonzero(result.tier != duck_tier))

    note(f"fold, {args.fold_sample:,} sampled subjects")
    rng = np.random.default_rng(args.seed + 1)
    sample = np.sort(rng.choice(args.subjects, min(args.fold_sample, args.subjects), replace=False)).tolist()
    histories = [(s, entries_of(columns, s)) for s in sample]
    started = time.perf_counter()
    folded = [compact(fold(policy, entries, AT, None, columns["subjects"][s])) for s, entries in histories]
    fold_seconds = time.perf_counter() - started
    note("CompactStanding objects for every subject")
    started = time.perf_counter()
    objects = [standing for _subject, standing in result.standings()]
    objects_seconds = time.perf_counter() - started
    standing_mismatches = sum(objects[s] != b for s, b in zip(sample, folded))
    del objects
    scale = args.subjects / len(sample)

    report = {
        "bench": "batch",
        "policy": "rongcheng",
        "subjects": args.subjects,
        "events": events,
        "batch_seconds": round(batch_seconds, 3),
        "duckdb_seconds": round(duck_seconds, 3),
        "ratio_to_duckdb": round(batch_seconds / duck_seconds, 3),
        "batch_runs": [round(x, 3) for x in batch_runs],
        "duckdb_runs": [round(x, 3) for x in duck_runs],
        "threads": threads,
        "goal_ratio": 1.5,
        "fallback_subjects": result.fallback_subjects,
        "score_mismatches": score_mismatches,
        "tier_mismatches": tier_mismatches,
        "fold_sampled_subjects": len(sample),
        "fold_seconds_scaled": round(fold_seconds * scale, 1),
        "fold_ratio_to_batch": round(fold_seconds * scale / batch_seconds, 1),
        "standing_mismatches_in_sample": standing_mismatches,
        "compact_objects_seconds": round(objects_seconds, 1),
        "scope": "in-memory columns to standings as columns (batch: the whole standing; duckdb: score and tier); "
                 "reading the ledger and writing standings excluded on both sides; best of the runs compared; "
                 "fold: sampled subjects, time scaled to the population; CompactStanding objects for all, timed apart",
        "numpy": np.__version__,
        "duckdb": __import__("duckdb").__version__,
    }
    emit(report)
    return 1 if score_mismatches or tier_mismatches or standing_mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
