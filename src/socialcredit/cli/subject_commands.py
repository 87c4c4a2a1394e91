"""Commands about one subject: standing, explain, check, replay; and the audit log."""

from __future__ import annotations

import re
from typing import Annotated, Optional

import typer

from ..results import StandingReport
from .app import (EXIT_CHECK_FAILED, EXIT_DENIED, ApiKeyOption, AtOption, JsonFlag, KindOption, ServerOption,
                  SubjectArgument, app, caller, day, escape, handles_errors, kind_option, open_registry, out, print_json,
                  reference, say, warn)
from .grid import Grid


REASONS_SHOWN = 5  # the ones that matter most (they come ranked); decisions show four


@app.command()
@handles_errors
def standing(
    ref: SubjectArgument,
    kind: KindOption = "person",
    at: AtOption = None,
    known_at: Annotated[Optional[int], typer.Option("--known-at", help="As the registry knew it when the ledger held its first SIZE entries.")] = None,
    as_json: JsonFlag = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
):
    """A subject's score, tier, dimensions, lists, measures and ranked reasons."""
    with open_registry(server, api_key) as registry:
        result = registry.standing(reference(ref), kind=kind_option(kind), at=at, known_at=known_at, caller=caller())
    if as_json:
        print_json(result)
    else:
        _print_standing(result)


def _print_standing(result: StandingReport) -> None:
    tier = f"  tier [bold]{escape(str(result.tier))}[/]" if result.tier is not None else ""
    headline = f"[bold]Score {result.score}[/]{tier}" if result.score is not None else "[bold]No score[/] (this policy keeps none: it works through lists)"
    out.print(f"{headline}   ({escape(result.policy.id)} {escape(result.policy.version)}, "
              f"at {day(result.at, result.policy.timezone)}, ledger size {result.known_at})")
    if result.entries == 0:
        out.print("No records about this subject: the standing is the policy's starting point.")
    if len(result.dimensions) > 1:
        out.print("Dimensions: " + ", ".join(f"{k} {v}" for k, v in result.dimensions.items()))
    zone = result.policy.timezone
    for item in result.lists:
        case = f" (case {escape(item.case)})" if item.case else ""
        out.print(f"[red]Listed[/] on {escape(item.list)}{case} since {day(item.since, zone)}"
                  + (f" until {day(item.until, zone)}" if item.until else " (no end date)"))
    if result.measures:
        table = Grid("Measures in force", "measure", "service", "effect", "until")
        for m in result.measures:
            table.row(m.id, m.service, m.effect, day(m.until, zone))
        table.print("service", "measure", "until", "effect")
    if result.reasons:
        out.print("[bold]Why:[/]")
        for reason in result.reasons[:REASONS_SHOWN]:
            say(f"  • {reason.text}")
        if len(result.reasons) > REASONS_SHOWN:
            more = len(result.reasons) - REASONS_SHOWN
            say(f"  … and {more} more record{'s' if more != 1 else ''} that count: `socialcredit explain` "
                "lists every one")
    for rating in result.ratings or []:
        status = "" if rating.status == "counts" else f" ({rating.status})"
        say(f"  {'★' * rating.stars}{'☆' * (5 - rating.stars)} #{rating.entry} weight {rating.weight:g}{status}: "
            f"{rating.why_this_weight}")


@app.command()
@handles_errors
def explain(
    ref: SubjectArgument,
    kind: KindOption = "person",
    at: AtOption = None,
    as_json: JsonFlag = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
):
    """Every record about a subject and what it does to the standing, in plain words."""
    with open_registry(server, api_key) as registry:
        result = registry.explain(reference(ref), kind=kind_option(kind), at=at, caller=caller())
    if as_json:
        print_json(result)
        return
    tier = f", tier [bold]{escape(str(result.tier))}[/]" if result.tier is not None else ""
    headline = f"[bold]Score {result.score}[/]{tier}" if result.score is not None else "[bold]No score[/] (none is kept)"
    out.print(f"{headline} under {escape(result.policy.id)} {escape(result.policy.version)}, "
              f"at {day(result.at, result.policy.timezone)}.")
    if not result.entries:
        out.print("There are no records about this subject.")
    for item in result.entries:
        out.print(f"[bold]#{item.entry}[/] {item.occurred_on} {escape(item.what)} (reported by "
                  f"{escape(item.provider)})", highlight=False)
        for effect in item.effects:
            say(f"    {effect.text}")
    for m in result.measures:
        until = f" until {day(m.until, result.policy.timezone)}" if m.until else ""
        out.print(f"[bold]{m.effect}[/] {m.service}{until}: {escape(m.notice)} {escape(m.remedy)}", highlight=False)


@app.command()
@handles_errors
def check(
    ref: SubjectArgument,
    service: Annotated[str, typer.Argument(help="Dotted service name, e.g. transport.rail.high_speed.")],
    kind: KindOption = "person",
    at: AtOption = None,
    as_json: JsonFlag = False,
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
):
    """May the subject use the service? Exit 0 if allowed, 3 if denied. Logged for replay."""
    with open_registry(server, api_key) as registry:
        decision = registry.check(reference(ref), service, kind=kind_option(kind), at=at, caller=caller())
        policy_id = decision.policy.id
    if not decision.service_known:
        warn(f"no measure of the {policy_id} policy covers {service} or a service above or below it; "
             "check the spelling")
    if as_json:
        print_json(decision)
    else:
        verdict = "[green]ALLOWED[/]" if decision.allowed else "[red]DENIED[/]"
        out.print(f"{verdict} {escape(service)}: effect {decision.effect} (decision {decision.decision_id}, "
                  f"ledger size {decision.ledger_size})")
        for m in decision.measures:
            until = f" (until {day(m.until, decision.policy.timezone)})" if m.until else ""
            say(f"  {m.notice}{until} {m.remedy}")
            if m.legal_basis:
                say(f"  Legal basis: {m.legal_basis}")
        for reason in decision.reasons:
            say(f"  • {reason.text}")
    if not decision.allowed:
        raise typer.Exit(EXIT_DENIED)


@app.command()
@handles_errors
def replay(
    decision_id: Annotated[str, typer.Argument(help="A decision id printed by `check`.")],
    as_json: JsonFlag = False,
):
    """Recompute a logged decision from the ledger as it was then; exit 1 if it differs."""
    with open_registry() as registry:
        result = registry.replay(decision_id, caller=caller())
    if as_json:
        print_json(result)
    else:
        same = "[green]same[/]" if result.same else "[red]DIFFERENT[/]"
        out.print(f"Decision {escape(decision_id)} on {result.service} at {result.at} "
                  f"(ledger size {result.ledger_size}): {same}")
        for label, verdict in (("logged", result.logged), ("replayed", result.replayed)):
            measures = ", ".join(verdict.measures) or "no measure"
            word = "allowed" if verdict.allowed else "denied"
            say(f"  {label + ':':<9} {word}, effect {verdict.effect}, {measures}")
    if not result.same:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
@handles_errors
def audit(
    ref: Annotated[Optional[str], typer.Argument(help="Only records about this subject (national ID, unified social credit code or username).")] = None,
    kind: KindOption = "person",
    principal: Annotated[Optional[str], typer.Option("--principal", help="Only what this principal did.")] = None,
    action: Annotated[Optional[str], typer.Option("--action", help="Only this action (standing, explain, decision, replay, …).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many of the newest records to show.")] = 100,
    as_json: JsonFlag = False,
):
    """The audit log, newest first: who read whose record or had a decision made, when and why. Logged too."""
    with open_registry() as registry:
        result = registry.audit(reference(ref), kind=kind_option(kind), principal=principal, action=action, limit=limit,
                                caller=caller())
    if as_json:
        print_json(result)
        return
    if not result.entries:
        out.print("No records logged" + (" about this subject." if ref is not None else "."))
        return
    table = Grid("Audit log, newest first", "time", "principal", "action", "subject", "detail")
    for item in result.entries:
        subject = item.subject or "—"
        from ..policy.describe import scalar_words

        detail = ", ".join(f"{k} {_to_the_second(scalar_words(v))}" for k, v in item.detail.items() if v is not None)
        if item.purpose:
            detail = f"purpose {item.purpose}" + (f", {detail}" if detail else "")
        table.row(item.at[:19] + "Z", item.principal, item.action,
                  subject[:12] + "…" if len(subject) > 13 else subject, detail)
    table.print("time", "action", "subject", "principal")


def _to_the_second(text: str) -> str:
    """`2026-03-01T08:00:00.123456Z` → `2026-03-01T08:00:00Z`; other text unchanged."""
    return _FRACTION.sub("Z", text)


_FRACTION = re.compile(r"(?<=T\d\d:\d\d:\d\d)\.\d+Z$")
