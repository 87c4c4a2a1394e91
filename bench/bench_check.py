"""Decision throughput and latency, durable: batches, single calls, and concurrent callers.

A registry of 100,000 subjects (98,000 residents and 2,000 businesses from
`socialcredit.sim.town.build_subjects`; only residents if the pack has no event for a
business) is built under the `china-judgment-defaulters` pack
(`--policy` to change). Every subject gets one event, some a second, drawn from the pack's own
catalogue:

- 8% (`--bad-share`) get an event that puts them on a list carrying a `deny` measure (or, in a
  pack without such lists, one with negative points); a third of those also get the event
  that ends the listing (payment, withdrawal...) some time later;
- the others get an event that leads to no denial (in the China pack an administrative
  penalty, or an A-grade tax rating for businesses), and 15% of them a second one.

Events fall in the year before today and are ingested in one call (not timed). The services
checked are a handful taken from the pack: up to three guarded by deny measures, one that has
both a deny and a favourable measure, one favourable, and one no measure governs. The
(subject, service) pairs, every subject with every service, are shuffled.

Every decision is in the decision log (and the audit log) before the call returns, so each
commit is an fsync. Timed, in process, and reported apart:

1. warm-up: one pass over all pairs in batches (loads the standings; its answers become the
   anchor's table);
2. `batched`: N decisions (default 1,000,000) through `check_subjects` (check_many) in
   batches of 1,000, one commit per batch; anchor: a plain dict lookup of the same pairs;
3. `single`: 3,000 calls of `check_subject`, one after another, each committed before it
   returns; median and p99 latency; anchor: the same number of one-row durable commits with
   the standard library's sqlite3 (WAL, synchronous=FULL): the floor for a durable answer;
4. `concurrent`: the same 3,000 single calls from 8 threads sharing the registry: concurrent
   callers share commits (group commit); the number of commits is reported.

At the end the `decisions` table (which is also the audit log's record of each decision, with
the caller and its role) is counted: every decision must be in it.

Prints exactly one JSON line on stdout; progress goes to stderr.

    python bench/bench_check.py            # full size (about a minute)
    python bench/bench_check.py --quick    # a few seconds, for tests and CI
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

from _common import emit, note, profiled
from socialcredit.instants import format_instant, now_us
from socialcredit.policy.compiled import Policy, matches
from socialcredit.policy.load import load_policy
from socialcredit.registry import Caller, CheckRequest, Registry
from socialcredit.sim.town import DAY_US, Subject, build_subjects
from socialcredit.sim.town import _attributes, _endings  # the town's own attribute drawing

GOAL_DECISIONS_PER_SECOND = 100_000
UNREGULATED_SERVICE = "retail.groceries"  # no measure of any shipped pack governs it



# -- the registry's contents ----------------------------------------------------------------------


class Catalogue:
    """The pack's event types sorted by what they do to a subject of each kind."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.deny_lists = {m.list_id for m in policy.measures if m.effect == "deny" and m.kind == "list"}
        follow_ups = set()
        entering = set()
        for event_type, triggers in policy.list_triggers_by_event.items():
            if any(t.action == "enter" for t in triggers):
                entering.add(event_type)
            else:
                follow_ups.add(event_type)
        self.bad: dict[str, list[str]] = {}
        self.neutral: dict[str, list[str]] = {}
        for kind in ("person", "organization"):
            listing, negative, neutral, other = [], [], [], []
            for event_type, spec in policy.event_types.items():
                if kind not in spec.subject_kinds or event_type in follow_ups:
                    continue
                if self._enters_deny_list(event_type):
                    listing.append(event_type)
                elif any(r.points < 0 for r in policy.rules_by_event.get(event_type, ())):
                    negative.append(event_type)
                elif event_type in entering or not policy.rules_by_event.get(event_type):
                    neutral.append(event_type)
                else:
                    other.append(event_type)  # positive points
            self.bad[kind] = listing or negative
            self.neutral[kind] = other + neutral or negative  # prefer types that only add points

    def _enters_deny_list(self, event_type: str) -> bool:
        return any(t.action == "enter" and t.list_id in self.deny_lists
                   for t in self.policy.list_triggers_by_event.get(event_type, ()))

    def attributes(self, event_type: str, rng: random.Random, bad: bool) -> dict:
        """Valid attributes; for a listing event, ones that match a deny list's entry trigger."""
        for _ in range(50):
            attributes = _attributes(self.policy, event_type, rng)
            if not bad or not self._enters_deny_list(event_type):
                return attributes
            if any(t.action == "enter" and t.list_id in self.deny_lists and matches(t.match, attributes)
                   for t in self.policy.list_triggers_by_event[event_type]):
                return attributes
        return attributes


def registry_events(policy: Policy, subjects: list[Subject], end_us: int, rng: random.Random,
                    bad_share: float) -> tuple[list[dict], int]:
    """One or two events per subject, in time order, and how many subjects got a bad one."""
    catalogue = Catalogue(policy)
    start_us = end_us - 365 * DAY_US
    events: list[dict] = []
    bad_subjects = 0

    def add(subject: Subject, event_type: str, occurred: int, attributes: dict) -> None:
        events.append({
            "subject": subject.ref,
            "subject_kind": subject.kind,
            "type": event_type,
            "occurred_at": format_instant(occurred - occurred % 1_000_000),
            "provider": event_type.split(".", 1)[0] + "-registry",
            "key": "",
            "attributes": attributes,
        })

    for subject in subjects:
        bad_types = catalogue.bad[subject.kind]
        neutral_types = catalogue.neutral[subject.kind]
        if not neutral_types and not bad_types:
            raise SystemExit(f"the {policy.id} pack has no event type for a {subject.kind}")
        occurred = start_us + int(rng.random() * (end_us - start_us))
        if bad_types and (rng.random() < bad_share or not neutral_types):
            bad_subjects += 1
            event_type = rng.choice(bad_types)
            attributes = catalogue.attributes(event_type, rng, bad=True)
            add(subject, event_type, occurred, attributes)
            if rng.random() < 0.35:
                endings = [e for e in _endings(policy, event_type, attributes)
                           if subject.kind in policy.event_types[e[0]].subject_kinds]
                later = occurred + int(rng.random() * (end_us - occurred))
                if endings and rng.random() < 0.95:
                    follow_type, case_attribute = endings[0]
                    follow = _attributes(policy, follow_type, rng)
                    if case_attribute and case_attribute in attributes:
                        follow[case_attribute] = attributes[case_attribute]
                    add(subject, follow_type, later, follow)
                else:
                    second = rng.choice(bad_types)
                    add(subject, second, later, catalogue.attributes(second, rng, bad=True))
        else:
            event_type = rng.choice(neutral_types)
            add(subject, event_type, occurred, catalogue.attributes(event_type, rng, bad=False))
            if rng.random() < 0.15:
                second = rng.choice(neutral_types)
                later = start_us + int(rng.random() * (end_us - start_us))
                add(subject, second, later, catalogue.attributes(second, rng, bad=False))
    events.sort(key=lambda e: e["occurred_at"])
    for number, event in enumerate(events):
        event["key"] = f"chk-{number:08d}"
    return events, bad_subjects


def choose_services(policy: Policy) -> list[str]:
    """A handful: deny services (the most guarded first, then other domains), a service with a
    deny and a favourable measure, a favourable one, and one no measure governs."""

    def denies(service: str) -> int:
        return sum(m.effect == "deny" for m in policy.measures_for_service(service))

    deny_services = list(dict.fromkeys(m.service for m in policy.measures if m.effect == "deny"))
    chosen: list[str] = []
    domains: set[str] = set()
    for service in sorted(deny_services, key=lambda s: -denies(s))[:1] + deny_services:
        domain = service.split(".", 1)[0]
        if service not in chosen and domain not in domains and len(chosen) < 3:
            chosen.append(service)
            domains.add(domain)
    mixed = [s for s in deny_services
             if s not in chosen and any(m.effect != "deny" for m in policy.measures_for_service(s))]
    chosen += mixed[:1]
    favourable = [m.service for m in policy.measures
                  if m.effect != "deny" and m.service not in chosen and not denies(m.service)]
    chosen += favourable[:1]
    if policy.measures_for_service(UNREGULATED_SERVICE):
        raise SystemExit(f"{UNREGULATED_SERVICE} is governed by a measure of {policy.id}; pick another")
    chosen.append(UNREGULATED_SERVICE)
    return chosen


# -- timing ------------------------------------------------------------------------------------------


def percentile(ordered: list[int], share: float) -> float:
    """The value at `share` of an ascending list of nanoseconds, in microseconds."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] / 1000


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policy", default="china-judgment-defaulters", help="pack name or TOML file")
    parser.add_argument("--subjects", type=int, help="subjects in the registry (default 100,000)")
    parser.add_argument("--decisions", type=int, help="decisions timed in batches (default 1,000,000)")
    parser.add_argument("--batch", type=int, default=1_000, help="decisions per check_many batch (default 1,000)")
    parser.add_argument("--single-calls", type=int, help="single durable calls timed (default 3,000)")
    parser.add_argument("--threads", type=int, default=8, help="threads making single calls together (default 8)")
    parser.add_argument("--bad-share", type=float, default=0.08, help="share of subjects with a listing")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile the timed region, print the top N functions by tottime to stderr")
    parser.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the temporary database goes")
    args = parser.parse_args(argv)
    total_subjects = args.subjects or (3_000 if args.quick else 100_000)
    decisions = args.decisions or (20_000 if args.quick else 1_000_000)
    single_calls = args.single_calls or (300 if args.quick else 3_000)

    policy = load_policy(args.policy)
    rng = random.Random(args.seed)
    end_us = now_us() - now_us() % DAY_US
    takes_organizations = any("organization" in spec.subject_kinds for spec in policy.event_types.values())
    businesses = max(1, total_subjects // 50) if takes_organizations else 0  # e.g. sesame: people only
    subjects = build_subjects(rng, total_subjects - businesses, businesses)
    events, bad_subjects = registry_events(policy, subjects, end_us, rng, args.bad_share)
    services = choose_services(policy)
    note(f"{len(subjects):,} subjects, {len(events):,} events, {bad_subjects:,} with a listing or "
         f"negative record; services {services}")

    with tempfile.TemporaryDirectory(prefix="socialcredit-bench-check-", dir=args.tmpdir) as folder:
        db = Path(folder) / "registry.db"
        registry = Registry.init(f"sqlite:///{db}", policy, key_file=Path(folder) / "registry.db.key")
        bench = Caller("bench", "service")
        try:
            t0 = time.perf_counter()
            result = registry.ingest(events)
            build_seconds = time.perf_counter() - t0
            if result.errors or result.accepted != len(events):
                raise SystemExit(f"ingest refused events: {result.errors[:1]}")
            tiers = registry.store.standings.tier_counts()
            in_registry = sum(tiers.values())
            if in_registry != len(subjects):
                raise SystemExit(f"{in_registry} subjects have a standing, expected {len(subjects)}")
            note(f"registry built in {build_seconds:.1f}s")

            pseudonyms = [registry.pseudonym(s.ref, s.kind) for s in subjects]
            at_us = now_us()
            pairs = [CheckRequest(p, service, at_us) for p in pseudonyms for service in services]
            rng.shuffle(pairs)

            def in_batches(requests):
                made = []
                for start in range(0, len(requests), args.batch):
                    made += registry.check_subjects(requests[start : start + args.batch], caller=bench)
                return made

            # 1. warm-up over every pair: standings into memory, answers for the anchor
            t0 = time.perf_counter()
            answers = {(r.subject, r.service): d.allowed for r, d in zip(pairs, in_batches(pairs))}
            warmup_seconds = time.perf_counter() - t0
            note(f"warm-up: {len(pairs):,} decisions in {warmup_seconds:.1f}s")

            # 2. batches: check_many, one commit per batch
            sequence = (pairs * (decisions // len(pairs) + 1))[:decisions]
            t0 = time.perf_counter()
            with profiled(args.profile, "the batched decisions"):
                batched = in_batches(sequence)
            seconds = time.perf_counter() - t0
            mismatches = sum(d.allowed != answers[r.subject, r.service] for r, d in zip(sequence, batched))
            note(f"batches of {args.batch}: {decisions:,} decisions in {seconds:.2f}s = {decisions / seconds:,.0f}/s")

            # 3. single calls, one after another: each is committed (an fsync) before it returns
            singles = rng.sample(pairs, min(single_calls, len(pairs)))
            ns = time.perf_counter_ns
            timings = [0] * len(singles)
            t0 = time.perf_counter()
            for i, request in enumerate(singles):
                t = ns()
                decision = registry.check_subject(request.subject, request.service, at_us, caller=bench)
                timings[i] = ns() - t
                mismatches += decision.allowed != answers[request.subject, request.service]
            single_seconds = time.perf_counter() - t0
            timings.sort()
            note(f"single calls: {len(singles) / single_seconds:,.0f}/s, median {percentile(timings, 0.5):.0f} us")

            # 4. single calls from many threads at once, sharing commits (group commit)
            commits_before = registry.decisions.log.commits
            concurrent_timings: list[int] = []
            lock = threading.Lock()

            def worker(share):
                local = []
                for request in share:
                    t = ns()
                    registry.check_subject(request.subject, request.service, at_us, caller=bench)
                    local.append(ns() - t)
                with lock:
                    concurrent_timings.extend(local)

            shares = [singles[i :: args.threads] for i in range(args.threads)]
            threads = [threading.Thread(target=worker, args=(share,)) for share in shares]
            t0 = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            concurrent_seconds = time.perf_counter() - t0
            concurrent_commits = registry.decisions.log.commits - commits_before
            concurrent_timings.sort()
            note(f"{args.threads} threads: {len(singles) / concurrent_seconds:,.0f}/s in {concurrent_commits} commits")
            made = len(pairs) + decisions + 2 * len(singles)
        finally:
            registry.close()

        # the anchors: a dict of precomputed answers for the same pairs; one durable commit
        t0 = time.perf_counter()
        for request in sequence:
            answer = answers[request.subject, request.service]
        anchor_seconds = time.perf_counter() - t0
        del answer
        anchor_commits_per_second = durable_commits_per_second(Path(folder) / "anchor.db", len(singles))
        note(f"anchors: {decisions / anchor_seconds:,.0f} lookups/s; {anchor_commits_per_second:,.0f} "
             "durable one-row commits/s")

        conn = sqlite3.connect(db)
        try:
            (logged,) = conn.execute("SELECT count(*) FROM decisions").fetchone()
            (audited,) = conn.execute("SELECT count(*) FROM decisions WHERE principal = 'bench' AND role = 'service'")\
                .fetchone()
        finally:
            conn.close()

    decisions_per_second = decisions / seconds
    single_per_second = len(singles) / single_seconds
    denied = sum(not answers[r.subject, r.service] for r in sequence)
    report = {
        "bench": "check",
        "policy": policy.id,
        "subjects": in_registry,
        "events": len(events),
        "listed_or_negative_subjects": bad_subjects,
        "services": services,
        "batched": {
            "what": f"check_many in batches of {args.batch}: one commit per batch",
            "decisions": decisions,
            "decisions_per_second": round(decisions_per_second),
            "seconds": round(seconds, 3),
            "anchor_lookups_per_second": round(decisions / anchor_seconds),
            "ratio": round(decisions_per_second / (decisions / anchor_seconds), 5),
        },
        "single": {
            "what": "check, one call at a time: each decision committed (fsync) before it returns",
            "calls": len(singles),
            "decisions_per_second": round(single_per_second),
            "median_us": round(percentile(timings, 0.5), 1),
            "p99_us": round(percentile(timings, 0.99), 1),
            "anchor_durable_commits_per_second": round(anchor_commits_per_second),
            "ratio": round(single_per_second / anchor_commits_per_second, 4),
        },
        "concurrent": {
            "what": f"check from {args.threads} threads sharing one registry: concurrent calls share commits",
            "calls": len(singles),
            "threads": args.threads,
            "decisions_per_second": round(len(singles) / concurrent_seconds),
            "commits": concurrent_commits,
            "decisions_per_commit": round(len(singles) / max(concurrent_commits, 1), 2),
            "median_us": round(percentile(concurrent_timings, 0.5), 1),
            "p99_us": round(percentile(concurrent_timings, 0.99), 1),
        },
        "denied_share": round(denied / decisions, 4),
        "denied_subjects": len({subject for (subject, _), allowed in answers.items() if not allowed}),
        "mismatches": mismatches,
        "warmup_decisions": len(pairs),
        "warmup_seconds": round(warmup_seconds, 3),
        "logged": logged,
        "audited": audited,
        "expected_logged": made,
        "all_logged": logged == made == audited,
        "goal_batched_decisions_per_second": GOAL_DECISIONS_PER_SECOND,
        "meets_goal": decisions_per_second >= GOAL_DECISIONS_PER_SECOND,
        "quick": args.quick,
        "profiled": bool(args.profile),
        "seed": args.seed,
    }
    return emit(report)


def durable_commits_per_second(path: Path, commits: int) -> float:
    """The floor for a single durable decision: one-row commits in WAL mode with synchronous=FULL."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE decisions (id TEXT PRIMARY KEY, subject TEXT, service TEXT, allowed INTEGER)")
        t0 = time.perf_counter()
        for i in range(commits):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO decisions VALUES (?, ?, ?, ?)", (f"d-{i}", "s", "transport.air", 1))
            conn.execute("COMMIT")
        return commits / (time.perf_counter() - t0)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
