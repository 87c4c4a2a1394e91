"""Decision throughput and latency: `Registry.check_subject` against a plain dict lookup.

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

Timed, in process:

1. warm-up: one pass over all pairs (loads the materialized standings into memory; its
   answers become the anchor's table);
2. throughput: N decisions (default 1,000,000, cycling through the pairs), with
   `registry.flush()` (writing the buffered decision log) inside the timed region;
3. latency: a separate pass of 200,000 calls, each between two `time.perf_counter_ns()`;
   median, p99 and p99.9 in microseconds (the timer's own cost is included; it is reported
   as `timer_overhead_us`).

The anchor is a plain dict `{(subject, service): allowed}` looked up for the same pairs, timed
the same two ways. At the end the `decisions` table is counted: every decision must be logged.

Prints exactly one JSON line on stdout; progress goes to stderr.

    python bench/bench_check.py            # full size (about a minute)
    python bench/bench_check.py --quick    # a few seconds, for tests and CI
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import emit, note, profiled
from socialcredit.instants import format_instant, now_us
from socialcredit.policy.compiled import Policy, matches
from socialcredit.policy.load import load_policy
from socialcredit.registry import Registry
from socialcredit.sim.town import DAY_US, Subject, build_subjects
from socialcredit.sim.town import _attributes, _endings  # the town's own attribute drawing

GOAL_DECISIONS_PER_SECOND = 100_000
GOAL_MEDIAN_US = 10
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


def timer_overhead_ns(samples: int = 100_000) -> int:
    ns = time.perf_counter_ns
    timings = []
    for _ in range(samples):
        t = ns()
        timings.append(ns() - t)
    timings.sort()
    return timings[len(timings) // 2]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--policy", default="china-judgment-defaulters", help="pack name or TOML file")
    parser.add_argument("--subjects", type=int, help="subjects in the registry (default 100,000)")
    parser.add_argument("--decisions", type=int, help="timed decisions (default 1,000,000)")
    parser.add_argument("--latency-calls", type=int, help="individually timed calls (default 200,000)")
    parser.add_argument("--bad-share", type=float, default=0.08, help="share of subjects with a listing")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="cProfile the timed region, print the top N functions by tottime to stderr")
    parser.add_argument("--tmpdir", default=tempfile.gettempdir(), help="where the temporary database goes")
    args = parser.parse_args(argv)
    total_subjects = args.subjects or (3_000 if args.quick else 100_000)
    decisions = args.decisions or (20_000 if args.quick else 1_000_000)
    latency_calls = args.latency_calls or (5_000 if args.quick else 200_000)

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
        registry = Registry.init(f"sqlite:///{db}", policy, key_file=Path(folder) / "registry.db.key",
                                 principal="bench")
        try:
            t0 = time.perf_counter()
            result = registry.ingest(events)
            build_seconds = time.perf_counter() - t0
            if result.errors or result.accepted != len(events):
                raise SystemExit(f"ingest refused events: {result.errors[:1]}")
            tiers = registry.store.tier_counts()
            in_registry = sum(tiers.values())
            if in_registry != len(subjects):
                raise SystemExit(f"{in_registry} subjects have a standing, expected {len(subjects)}")
            note(f"registry built in {build_seconds:.1f}s")

            pseudonyms = [registry.pseudonym(s.ref, s.kind) for s in subjects]
            pairs = [(p, service) for p in pseudonyms for service in services]
            rng.shuffle(pairs)
            at_us = now_us()
            check = registry.check_subject

            # 1. warm-up over every pair: standings into memory, answers for the anchor
            t0 = time.perf_counter()
            answers = {(subject, service): check(subject, service, at_us).allowed for subject, service in pairs}
            registry.flush()
            warmup_seconds = time.perf_counter() - t0
            note(f"warm-up: {len(pairs):,} decisions in {warmup_seconds:.1f}s")

            # 2. throughput
            sequence = (pairs * (decisions // len(pairs) + 1))[:decisions]
            t0 = time.perf_counter()
            with profiled(args.profile, "the timed decisions"):
                for subject, service in sequence:
                    check(subject, service, at_us)
                registry.flush()
            seconds = time.perf_counter() - t0
            note(f"{decisions:,} decisions in {seconds:.2f}s = {decisions / seconds:,.0f}/s")

            # 3. latency, call by call
            latency_pairs = rng.sample(pairs, min(latency_calls, len(pairs)))
            latency_pairs = (latency_pairs * (latency_calls // len(latency_pairs) + 1))[:latency_calls]
            ns = time.perf_counter_ns
            timings = [0] * latency_calls
            mismatches = 0
            for i, (subject, service) in enumerate(latency_pairs):
                t = ns()
                decision = check(subject, service, at_us)
                timings[i] = ns() - t
                if decision.allowed != answers[subject, service]:
                    mismatches += 1
            registry.flush()
            timings.sort()
            note(f"latency: median {percentile(timings, 0.5):.2f} us, p99 {percentile(timings, 0.99):.2f} us")
            made = len(pairs) + decisions + latency_calls
        finally:
            registry.close()

        # the anchor: a dict of precomputed answers, the same pairs, timed the same ways
        t0 = time.perf_counter()
        for subject, service in sequence:
            answer = answers[subject, service]
        anchor_seconds = time.perf_counter() - t0
        anchor_timings = [0] * latency_calls
        for i, (subject, service) in enumerate(latency_pairs):
            t = ns()
            answer = answers[subject, service]
            anchor_timings[i] = ns() - t
        del answer
        anchor_timings.sort()
        note(f"anchor: {decisions / anchor_seconds:,.0f} lookups/s, median {percentile(anchor_timings, 0.5):.2f} us")

        conn = sqlite3.connect(db)
        try:
            (logged,) = conn.execute("SELECT count(*) FROM decisions").fetchone()
        finally:
            conn.close()

    decisions_per_second = decisions / seconds
    median_us = percentile(timings, 0.5)
    denied = sum(not answers[pair] for pair in sequence)
    report = {
        "bench": "check",
        "policy": policy.id,
        "subjects": in_registry,
        "events": len(events),
        "listed_or_negative_subjects": bad_subjects,
        "services": services,
        "decisions": decisions,
        "decisions_per_second": round(decisions_per_second),
        "seconds": round(seconds, 3),
        "median_us": round(median_us, 2),
        "p99_us": round(percentile(timings, 0.99), 2),
        "p999_us": round(percentile(timings, 0.999), 2),
        "latency_calls": latency_calls,
        "timer_overhead_us": round(timer_overhead_ns() / 1000, 3),
        "anchor_lookups_per_second": round(decisions / anchor_seconds),
        "anchor_median_us": round(percentile(anchor_timings, 0.5), 2),
        "ratio": round(decisions_per_second / (decisions / anchor_seconds), 5),
        "denied_share": round(denied / decisions, 4),
        "denied_subjects": len({subject for (subject, _), allowed in answers.items() if not allowed}),
        "mismatches": mismatches,
        "warmup_decisions": len(pairs),
        "warmup_seconds": round(warmup_seconds, 3),
        "logged": logged,
        "expected_logged": made,
        "all_logged": logged == made,
        "goal_decisions_per_second": GOAL_DECISIONS_PER_SECOND,
        "goal_median_us": GOAL_MEDIAN_US,
        "meets_goal": decisions_per_second >= GOAL_DECISIONS_PER_SECOND and median_us <= GOAL_MEDIAN_US,
        "quick": args.quick,
        "profiled": bool(args.profile),
        "seed": args.seed,
    }
    return emit(report)


if __name__ == "__main__":
    main()
