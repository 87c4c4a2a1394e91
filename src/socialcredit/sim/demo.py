"""`socialcredit demo`: a synthetic town run through a policy, shown the way a newcomer needs.

It builds the town, ingests a year of its events with a progress bar, and prints the tier
distribution, the list sizes, one resident's standing with its reasons, and a few denied and
allowed checks, each with its decision id so it can be replayed.
"""

from __future__ import annotations

import os
import random
import shlex
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from ..instants import format_instant, now_us, parse_instant
from ..policy.load import load_policy
from ..errors import InvalidInput
from ..registry import Caller, Registry, key_path_for
from ..scoring.explain import summarize
from ..scoring.fold import fold
from .town import DAY_US, build_subjects, generate_events

_BAR_WIDTH = 40


def run_demo(url: str, key_file: Path | None, *, seed: int, residents: int, businesses: int, policy: str,
             as_json: bool, console: Console, progress: Progress, as_of: str | None = None) -> dict:
    chosen = load_policy(policy)
    end_us = parse_instant(as_of, allow_date=True) if as_of else _today_us()
    rng = random.Random(seed)
    subjects = build_subjects(rng, residents, businesses)
    events = generate_events(chosen, subjects, end_us - 365 * DAY_US, end_us, rng)
    if not as_json:
        console.print(f"[bold]A town of {residents:,} residents and {businesses:,} businesses[/] under "
                      f"[bold]{escape(chosen.document.policy.title)}[/] ({chosen.id} {chosen.version}), "
                      f"{len(events):,} events in the year to {format_instant(end_us)[:10]}.")
    registry = Registry.init(url, chosen, key_file=key_file, caller=Caller("demo"))
    try:
        started = time.perf_counter()
        with progress as bar:
            task = bar.add_task("Ingesting", total=len(events))
            # The town's clock is the end of its year, which may be later than today's.
            result = _ingest_by_month(registry, events, lambda n: bar.advance(task, n), lambda: end_us)
        seconds = time.perf_counter() - started
        if result.errors:
            raise InvalidInput(f"demo events were refused: line {result.errors[0].line}: {result.errors[0].error}")
        report = _report(registry, chosen, subjects, end_us, rng)
    finally:
        registry.close()
    report["ingest"] = {
        "events": result.accepted,
        "seconds": round(seconds, 2),
        "events_per_second": round(result.accepted / seconds) if seconds else None,
        "ledger_size": result.ledger_size,
        "root": result.root,
    }
    report["as_of"] = format_instant(end_us)
    report["seed"] = seed
    report["db"] = url
    report["references_file"] = str(_keep_references(report["checks"], Path(key_file) if key_file else key_path_for(url)))
    if as_json:
        import json
        import sys

        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        _print(console, report, chosen, policy)
    return report


def _ingest_by_month(registry: Registry, events: list[dict], progress, clock):
    """Month by month, as providers report: a rating's weight then reflects the rater's month."""
    batches: dict[str, list[dict]] = {}
    for event in events:
        batches.setdefault(event["occurred_at"][:7], []).append(event)
    total = None
    for month in sorted(batches):
        result = registry.ingest(batches[month], progress=progress, clock=clock)
        if result.errors:
            return result
        if total is None:
            total = result
        else:
            total.accepted += result.accepted
            total.ledger_size, total.root = result.ledger_size, result.root
    return total


def _today_us() -> int:
    now = now_us()
    return now - now % DAY_US


def _report(registry: Registry, policy, subjects, at_us: int, rng: random.Random) -> dict:
    pseudonyms = {registry.pseudonym(s.ref, s.kind): s for s in subjects}
    histories = registry.histories(list(pseudonyms))
    standings = {p: fold(policy, histories.get(p, []), at_us, None, p) for p in pseudonyms}
    tiers = Counter(s.tier for s in standings.values())
    lists = Counter(spell.list_id for s in standings.values() for spell in s.active_lists)
    scores = sorted(s.score for s in standings.values())
    sample = _sample_resident(standings, pseudonyms, rng)
    checks = _sample_checks(registry, policy, standings, pseudonyms, at_us)
    from ..policy.lint import lint

    findings = lint(policy)
    return {
        "policy": policy.ref(),
        "subjects": len(subjects),
        "tiers": {tier: tiers.get(tier, 0) for tier in [t.id for t in policy.tiers]} if policy.tiers else {},
        "score": {"min": scores[0], "median": scores[len(scores) // 2], "max": scores[-1]},
        "lists": {spec: lists.get(spec, 0) for spec in policy.lists},
        "sample": sample,
        "checks": checks,
        "lint": {
            "cross_context": sum(f.code == "cross-context" for f in findings),
            "findings": len(findings),
            "errors": sum(f.severity == "error" for f in findings),
        },
    }


def _keep_references(checks: list[dict], key_file: Path) -> Path:
    """The checked subjects' references, one a line, in a file beside the key (mode 0600): the
    demo's hints name the file (`explain @FILE`), so a national ID is never on the screen,
    in the JSON, or in the process list. Each check keeps its line's number instead."""
    path = key_file.with_name(key_file.name.removesuffix(".key") + ".subjects")
    lines = []
    for check in checks:
        reference = check.pop("reference")
        if reference not in lines:
            lines.append(reference)
        check["references_line"] = lines.index(reference) + 1
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write("".join(f"{line}\n" for line in lines))
    return path


def _sample_resident(standings, pseudonyms, rng: random.Random) -> dict:
    """A resident with a few reasons to show: neither spotless nor the worst case."""
    people = [p for p, s in pseudonyms.items() if s.kind == "person"]
    # Ordered by reference, not pseudonym: pseudonyms depend on each registry's random key.
    with_reasons = sorted((p for p in people if 2 <= len(standings[p].reasons) <= 6), key=lambda p: pseudonyms[p].ref)
    chosen = rng.choice(with_reasons or people)
    summary = summarize(standings[chosen])
    return {"ref": _mask(pseudonyms[chosen].ref), **summary}


def _sample_checks(registry: Registry, policy, standings, pseudonyms, at_us: int, limit: int = 4) -> list[dict]:
    """For a few measures, restrictions first: a subject it applies to, and one it does not."""
    checks = []
    shown = 0
    by_reference = sorted(standings, key=lambda p: pseudonyms[p].ref)
    for measure in sorted(policy.measures, key=lambda m: m.effect != "deny"):
        hit = next((p for p in by_reference if any(m.id == measure.id for m in standings[p].measures)), None)
        if hit is None or shown >= limit:
            continue
        shown += 1
        miss = next((p for p in by_reference if pseudonyms[p].kind == pseudonyms[hit].kind
                     and not standings[p].measures_for(measure.service)), None)
        for subject in (hit, miss):
            if subject is None:
                continue
            decision = registry.check_subject(subject, measure.service, at_us, caller=Caller("demo"))
            checks.append({
                "subject": _mask(pseudonyms[subject].ref),
                "reference": pseudonyms[subject].ref,  # kept in the references file, never printed
                "kind": pseudonyms[subject].kind,
                "service": measure.service,
                "allowed": decision.allowed,
                "effect": decision.effect,
                "decision_id": decision.decision_id,
                "reasons": [r.text for r in decision.reasons],
            })
    return checks


def _program() -> str:
    """How the user called us (`.venv/bin/socialcredit` under `make demo`), for copy-paste hints."""
    import os
    import sys

    called = sys.argv[0] if sys.argv and sys.argv[0] else "socialcredit"
    if os.path.basename(called) != "socialcredit":
        return "socialcredit"
    return os.path.relpath(called) if os.path.isabs(called) and os.path.exists(called) else called


def _mask(ref: str) -> str:
    return ref[:3] + "*" * (len(ref) - 5) + ref[-2:]


def _print(console: Console, report: dict, policy, named: str) -> None:
    ingest = report["ingest"]
    console.print(f"Ingested {ingest['events']:,} events in {ingest['seconds']} s "
                  f"({ingest['events_per_second']:,}/s); ledger size {ingest['ledger_size']:,}, "
                  f"Merkle root {ingest['root'][:16]}…")
    total = report["subjects"]
    if report["tiers"]:
        table = Table("tier", "subjects", "share", "", title=f"Tiers on {report['as_of'][:10]}")
        top = max(report["tiers"].values()) or 1
        for tier, count in report["tiers"].items():
            table.add_row(tier, f"{count:,}", f"{100 * count / total:.1f}%", "█" * round(_BAR_WIDTH * count / top))
        console.print(table)
    score = report["score"]
    console.print(f"Scores: lowest {score['min']}, median {score['median']}, highest {score['max']}.")
    if report["lists"]:
        console.print("On lists now: " + ", ".join(f"{name} {count:,}" for name, count in report["lists"].items()))
    sample = report["sample"]
    tier = f", tier {sample['tier']}" if sample["tier"] is not None else ""
    console.print(f"\n[bold]One resident[/] ({sample['ref']}): score {sample['score']}{tier}.")
    for reason in sample["reasons"]:
        console.print(f"  • {escape(reason['text'])}", highlight=False)
    for measure in sample["measures"]:
        console.print(f"  → {measure['effect']} {measure['service']}: {escape(measure['notice'])}", highlight=False)
    console.print("\n[bold]Checks[/] (each logged; `socialcredit replay ID` recomputes it):")
    for check in report["checks"]:
        verdict = "[green]allowed[/]" if check["allowed"] else "[red]DENIED[/] "
        console.print(f"  {verdict} {check['service']:<28} {check['effect']:<14} {check['subject']}  ({check['decision_id']})")
        for reason in check["reasons"][:2]:
            console.print(f"      {escape(reason)}", highlight=False)
    lint = report["lint"]
    console.print(f"\nThe linter finds {lint['findings']} issue(s) in this policy, {lint['cross_context']} of them "
                  f"cross-context sanctions: run `{_program()} policy lint {shlex.quote(named)}`.")
    if report["checks"]:
        where = shlex.quote(report["references_file"])
        console.print(f"Try: {_program()} --db {report['db']} explain @{where}" +
                      (" --kind organization" if report["checks"][0]["kind"] == "organization" else "") +
                      f"\n(the first checked subject: {where} holds their IDs, one a line, so that none is shown)")
