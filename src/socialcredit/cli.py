"""The command line: each command a thin wrapper over `Registry`.

Every command that prints a result takes `--json`; every user mistake ends in one line on
stderr that names the place and the cause, and a non-zero exit status (never a traceback).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape as _escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from .instants import Duration, TimeFormatError
from .intake.identity import IdentityError
from .intake.readers import InputError, read_events
from .store.database import StoreError
from .policy.compiled import EventError
from .policy.load import PolicyError, load_policy, pack_names
from .registry import DEFAULT_URL, Registry, RegistryError

USER_ERRORS = (RegistryError, StoreError, PolicyError, IdentityError, TimeFormatError, InputError, EventError)
EXIT_ERROR = 2
EXIT_DENIED = 3

app = typer.Typer(
    name="socialcredit",
    help="An open, auditable social credit engine: ledger, policy, standing, decision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
policy_app = typer.Typer(help="Show, lint and activate policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

out = Console()
err = Console(stderr=True)


class _Settings:
    db: str = DEFAULT_URL
    key_file: Path | None = None


settings = _Settings()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
KindOption = Annotated[str, typer.Option("--kind", help="person or organization (an 18-character unified social credit code).")]
AtOption = Annotated[Optional[str], typer.Option("--at", help="The time asked about (RFC 3339 or YYYY-MM-DD); default now.")]


def _fail(message: str, code: int = EXIT_ERROR):
    err.print(f"[bold red]error:[/] {_escape(message)}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def handles_errors(command):
    """Turn the errors a user can cause into one line and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted; nothing more was written", 130)

    return wrapper


def _open() -> Registry:
    principal = f"cli:{os.environ.get('USER', 'user')}"
    return Registry.open(settings.db, key_file=settings.key_file, principal=principal)


def _print_json(value) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def _named_or_current_policy(name: str | None):
    """A pack or file by name, or else the policy in force in the registry."""
    if name is None:
        with _open() as registry:
            return registry.policy
    return load_policy(name)


def _show(result, as_json: bool, line: str) -> None:
    """The result as JSON, or one line of text for a person."""
    if as_json:
        _print_json(result)
    else:
        out.print(line)


def _kind(kind: str) -> str:
    if kind not in ("person", "organization"):
        raise RegistryError(f"--kind must be person or organization, got {kind!r}")
    return kind


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not enabled or not err.is_terminal,
    )


@app.callback()
def _global(
    db: Annotated[str, typer.Option("--db", envvar="SOCIALCREDIT_DB", help="Database URL: sqlite:///FILE or postgresql://…")] = DEFAULT_URL,
    key_file: Annotated[Optional[Path], typer.Option("--key-file", envvar="SOCIALCREDIT_KEY_FILE", help="Pseudonym key file (default: beside a SQLite database). SOCIALCREDIT_KEY overrides it.")] = None,
):
    """An open, auditable social credit engine: ledger, policy, standing, decision."""
    settings.db = db
    settings.key_file = key_file


# -- registry life -----------------------------------------------------------------------------


@app.command()
@handles_errors
def init(
    policy: Annotated[str, typer.Option("--policy", help=f"A pack ({', '.join(pack_names())}) or a TOML file.")] = "rongcheng",
    as_json: JsonFlag = False,
):
    """Create a registry: database, pseudonym key (mode 0600) and the policy in force."""
    with Registry.init(settings.db, policy, key_file=settings.key_file, principal="cli") as registry:
        result = {"db": settings.db, "policy": registry.policy.ref(), **registry.root()}
    _show(result, as_json, f"Created registry [bold]{settings.db}[/] with policy [bold]{result['policy']['id']} {result['policy']['version']}[/].")


@app.command()
@handles_errors
def ingest(
    file: Annotated[str, typer.Argument(help="JSONL or CSV file of events, or - for standard input.")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv (default: from the file name, else jsonl).")] = "",
    provider: Annotated[Optional[str], typer.Option("--provider", help="The provider for events that do not name one; events naming another are refused.")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Ingest the valid events and list the rest (default: one bad line refuses the file).")] = False,
    as_json: JsonFlag = False,
):
    """Append provider events to the ledger: all of them or, on any error, none."""
    fmt = fmt or ("csv" if file.lower().endswith(".csv") else "jsonl")
    if fmt not in ("jsonl", "csv"):
        raise RegistryError(f"--format must be jsonl or csv, got {fmt!r}")
    if file == "-":
        stream, total, label = sys.stdin, None, "<stdin>"
    else:
        path = Path(file)
        if path.is_dir():
            raise RegistryError(f"{file}: is a folder; give an events file")
        if not path.is_file():
            raise RegistryError(f"{file}: no such file")
        # utf-8-sig: a CSV saved by a spreadsheet starts with a byte-order mark.
        stream, total, label = path.open("r", encoding="utf-8-sig", newline=""), path.stat().st_size, file
    with _open() as registry, _progress(not as_json) as bar:
        task = bar.add_task(f"Reading {label}", total=total)
        try:
            events = read_events(_counting(stream, bar, task, by_bytes=total is not None), fmt)
            result = registry.ingest(events, provider=provider, skip_invalid=skip_invalid)
        except UnicodeDecodeError as exc:
            raise RegistryError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        finally:
            if stream is not sys.stdin:
                stream.close()
    data = result.to_dict()
    if as_json:
        _print_json(data)
    else:
        for problem in result.errors[:50]:
            err.print(f"{label} line {problem['line']}: {problem['error']}", highlight=False, markup=False,
                      soft_wrap=True)
        if len(result.errors) > 50:
            err.print(f"… and {len(result.errors) - 50} more", highlight=False)
        if not (result.accepted or result.duplicates or result.rejected):  # an empty file, or blank lines only
            out.print(f"Nothing to ingest: {_escape(label)} holds no events; ledger size {result.ledger_size}.")
        else:
            verb = "Accepted" if result.written or not result.errors else "Nothing written:"
            out.print(
                f"{verb} {result.accepted} new, {result.duplicates} duplicate, {result.rejected} rejected; "
                f"ledger size {result.ledger_size}."
            )
    if result.errors and not skip_invalid:
        raise typer.Exit(EXIT_ERROR)


def _counting(stream, bar: Progress, task, by_bytes: bool):
    for line in stream:
        bar.advance(task, len(line.encode("utf-8")) if by_bytes else 1)
        yield line


# -- standing, explanation, decisions ----------------------------------------------------------


@app.command()
@handles_errors
def standing(
    ref: Annotated[str, typer.Argument(help="The subject: national ID, unified social credit code or username.")],
    kind: KindOption = "person",
    at: AtOption = None,
    known_at: Annotated[Optional[int], typer.Option("--known-at", help="As the registry knew it when the ledger held its first SIZE entries.")] = None,
    as_json: JsonFlag = False,
):
    """A subject's score, tier, dimensions, lists, measures and ranked reasons."""
    with _open() as registry:
        result = registry.standing(ref, kind=_kind(kind), at=at, known_at=known_at)
    if as_json:
        _print_json(result)
        return
    _print_standing(result)


def _print_standing(result: dict) -> None:
    tier = f"  tier [bold]{_escape(str(result['tier']))}[/]" if result["tier"] is not None else ""
    out.print(f"[bold]Score {result['score']}[/]{tier}   ({_escape(result['policy']['id'])} "
              f"{_escape(result['policy']['version'])}, at {result['at'][:19]}Z, ledger size {result['known_at']})")
    if result["entries"] == 0:
        out.print("No records about this subject: the standing is the policy's starting point.")
    if len(result["dimensions"]) > 1:
        out.print("Dimensions: " + ", ".join(f"{k} {v}" for k, v in result["dimensions"].items()))
    for item in result["lists"]:
        case = f" (case {_escape(item['case'])})" if item["case"] else ""
        out.print(f"[red]Listed[/] on {_escape(item['list'])}{case} since {item['since'][:10]}"
                  + (f" until {item['until'][:10]}" if item["until"] else " (no end date)"))
    if result["measures"]:
        table = Table("measure", "service", "effect", "until", title="Measures in force")
        for m in result["measures"]:
            table.add_row(m["id"], m["service"], m["effect"], (m["until"] or "—")[:10])
        out.print(table)
    if result["reasons"]:
        out.print("[bold]Why:[/]")
        for reason in result["reasons"]:
            out.print(f"  • {_escape(reason['text'])}", highlight=False)
    for rating in result.get("ratings", []):
        status = "" if rating["status"] == "counts" else f" ({rating['status']})"
        out.print(f"  {'★' * rating['stars']}{'☆' * (5 - rating['stars'])} #{rating['entry']} weight {rating['weight']:g}"
                  f"{status}: {_escape(rating['why_this_weight'])}", highlight=False)


@app.command()
@handles_errors
def explain(
    ref: Annotated[str, typer.Argument(help="The subject: national ID, unified social credit code or username.")],
    kind: KindOption = "person",
    at: AtOption = None,
    as_json: JsonFlag = False,
):
    """Every record about a subject and what it does to the standing, in plain words."""
    with _open() as registry:
        result = registry.explain(ref, kind=_kind(kind), at=at)
    if as_json:
        _print_json(result)
        return
    tier = f", tier [bold]{_escape(str(result['tier']))}[/]" if result["tier"] is not None else ""
    out.print(f"[bold]Score {result['score']}[/]{tier} under {_escape(result['policy']['id'])} "
              f"{_escape(result['policy']['version'])}, at {result['at'][:19]}Z.")
    if not result["entries"]:
        out.print("There are no records about this subject.")
    for item in result["entries"]:
        when = (item["occurred_at"] or "")[:10]
        out.print(f"[bold]#{item['entry']}[/] {when} {_escape(item['what'])}", highlight=False)
        for effect in item["effects"]:
            out.print(f"    {_escape(effect['text'])}", highlight=False)
    for m in result["measures"]:
        until = f" until {m['until'][:10]}" if m["until"] else ""
        out.print(f"[bold]{m['effect']}[/] {m['service']}{until}: {_escape(m['notice'])} {_escape(m['remedy'])}",
                  highlight=False)


@app.command()
@handles_errors
def check(
    ref: Annotated[str, typer.Argument(help="The subject: national ID, unified social credit code or username.")],
    service: Annotated[str, typer.Argument(help="Dotted service name, e.g. transport.rail.high_speed.")],
    kind: KindOption = "person",
    at: AtOption = None,
    as_json: JsonFlag = False,
):
    """May the subject use the service? Exit 0 if allowed, 3 if denied. Logged for replay."""
    from .policy.schema import SERVICE_PATTERN

    if not SERVICE_PATTERN.match(service):
        raise RegistryError(f"{service!r} is not a service name (dotted lower-case words, e.g. transport.air)")
    with _open() as registry:
        decision = registry.check(ref, service, kind=_kind(kind), at=at)
        known = registry.policy.knows_service(service)
    result = decision.to_dict()
    result["service_known"] = known
    if not known:
        err.print(f"warning: no measure of the {_escape(registry.policy.id)} policy covers {_escape(service)} or a "
                  "service above or below it; check the spelling", highlight=False, soft_wrap=True)
    if as_json:
        _print_json(result)
    else:
        verdict = "[green]ALLOWED[/]" if decision.allowed else "[red]DENIED[/]"
        out.print(f"{verdict} {service}: effect {decision.effect} (decision {decision.decision_id}, ledger size {decision.ledger_size})")
        for m in decision.measures:
            until = f" (until {m['until'][:10]})" if m["until"] else ""
            out.print(f"  {_escape(m['notice'])}{until} {_escape(m['remedy'])}", highlight=False)
            if m["legal_basis"]:
                out.print(f"  Legal basis: {_escape(m['legal_basis'])}", highlight=False)
        for reason in decision.reasons:
            out.print(f"  • {_escape(reason['text'])}", highlight=False)
    if not decision.allowed:
        raise typer.Exit(EXIT_DENIED)


@app.command()
@handles_errors
def replay(
    decision_id: Annotated[str, typer.Argument(help="A decision id printed by `check`.")],
    as_json: JsonFlag = False,
):
    """Recompute a logged decision from the ledger as it was then; exit 1 if it differs."""
    with _open() as registry:
        result = registry.replay(decision_id)
    if as_json:
        _print_json(result)
    else:
        same = "[green]same[/]" if result["same"] else "[red]DIFFERENT[/]"
        out.print(f"Decision {decision_id} on {result['service']} at {result['at']} (ledger size {result['ledger_size']}): {same}")
        for label in ("logged", "replayed"):
            item = result[label]
            measures = ", ".join(item["measures"]) or "no measure"
            verdict = "allowed" if item["allowed"] else "denied"
            out.print(f"  {label + ':':<9} {verdict}, effect {item['effect']}, {measures}", highlight=False)
    if not result["same"]:
        raise typer.Exit(1)


@app.command()
@handles_errors
def void(
    entry: Annotated[int, typer.Argument(help="The number of the event entry to cancel.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is cancelled (kept in the ledger).")],
    as_json: JsonFlag = False,
):
    """Cancel an event with a correction entry (the original stays, marked as cancelled)."""
    with _open() as registry:
        seq = registry.void(entry, reason)
        result = {"void_entry": seq, "cancels": entry, **registry.root()}
    _show(result, as_json, f"Entry #{entry} cancelled by entry #{seq}.")


# -- people rating people ----------------------------------------------------------------------


@app.command()
@handles_errors
def rate(
    rater: Annotated[str, typer.Argument(help="Who rates (must have opted in: `socialcredit enrol`).")],
    ratee: Annotated[str, typer.Argument(help="Who is rated.")],
    stars: Annotated[int, typer.Argument(help="1 to 5 stars.")],
    interaction: Annotated[Optional[str], typer.Option("--interaction", help="The interaction rated (one rating per rater, subject and interaction).")] = None,
    category: Annotated[Optional[str], typer.Option("--category", help="personal, professional or dating, where the policy has categories.")] = None,
    review: Annotated[Optional[str], typer.Option("--review", help="Review text.")] = None,
    at: AtOption = None,
    as_json: JsonFlag = False,
):
    """Rate a subject after an interaction; the weight is fixed now from the rater's standing."""
    with _open() as registry:
        result = registry.rate(rater, ratee, stars, interaction=interaction, category=category, review=review, at=at)
        if result["entry"] is not None:
            entry = registry.store.entry(result["entry"])
            result["weight"] = entry.derived["weight"]
            result["why_this_weight"] = entry.derived["why"]
    if as_json:
        _print_json(result)
    elif result["duplicate"]:
        out.print("Already recorded: the same rating of the same interaction (nothing new written).")
    else:
        out.print(f"Rating recorded as entry #{result['entry']}, weight {result['weight']:g}: "
                  f"{_escape(result['why_this_weight'])}.", highlight=False)


@app.command()
@handles_errors
def enrol(
    ref: Annotated[str, typer.Argument(help="The subject who joins (or leaves) the rating app.")],
    leave: Annotated[bool, typer.Option("--out", help="Opt out instead of in.")] = False,
    attribute: Annotated[Optional[list[str]], typer.Option("--attribute", "-a", help="NAME=VALUE facts the policy asks of an opt-in (e.g. age=30).")] = None,
    at: AtOption = None,
    as_json: JsonFlag = False,
):
    """Opt in to rating (peer.opt_in) or out of it (peer.opt_out)."""
    attributes = {}
    for item in attribute or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise RegistryError(f"--attribute {item!r} is not NAME=VALUE")
        attributes[name.strip()] = value.strip()
    with _open() as registry:
        result = registry.enrol(ref, out=leave, at=at, attributes=attributes)
    _show(result, as_json, f"{'Opted out' if leave else 'Opted in'} (entry #{result['entry']}).")


@app.command()
@handles_errors
def reviews(
    ref: Annotated[str, typer.Argument(help="The subject whose reviews to show (what they see).")],
    at: AtOption = None,
    as_json: JsonFlag = False,
):
    """The ratings about a subject: stars, weight and why, held ones marked, replies."""
    with _open() as registry:
        result = registry.reviews(ref, at=at)
    if as_json:
        _print_json(result)
        return
    dims = ", ".join(f"{k} {v}" for k, v in result["dimensions"].items())
    out.print(f"[bold]Score {result['score']}[/] ({dims}), {len(result['reviews'])} rating(s), at {result['at']}")
    for item in result["reviews"]:
        mark = "[yellow]HELD[/] " if item["held"] else ("[red]DISPUTED[/] " if item["status"] == "disputed" else "")
        category = f" [{item['category']}]" if item["category"] else ""
        out.print(f"{mark}#{item['entry']} {item['occurred_at'][:10]} {'★' * item['stars']}{'☆' * (5 - item['stars'])}"
                  f"{_escape(category)} weight {item['weight']:g}: {_escape(item['why_this_weight'])}", highlight=False)
        if item["review"]:
            out.print(f"    “{_escape(item['review'])}”", highlight=False)
        if item["held"]:
            out.print(f"    {_escape(item['explanation'])}", highlight=False)
        for reply in item["replies"]:
            out.print(f"    reply #{reply['entry']}: {_escape(reply['text'])}", highlight=False)


@app.command()
@handles_errors
def respond(
    ref: Annotated[str, typer.Argument(help="The subject responding to a review about them.")],
    entry: Annotated[int, typer.Argument(help="The review's entry number (see `reviews`).")],
    reply: Annotated[Optional[str], typer.Option("--reply", help="A public reply.")] = None,
    dispute: Annotated[Optional[str], typer.Option("--dispute", help="Dispute it (during its hold), saying why.")] = None,
    at: AtOption = None,
    as_json: JsonFlag = False,
):
    """Reply to a review, or dispute a held one (where the policy allows it)."""
    with _open() as registry:
        result = registry.respond(ref, entry, reply=reply, dispute=dispute, at=at)
    _show(result, as_json, f"{'Reply' if reply is not None else 'Dispute'} recorded as entry #{result['entry']}.")


@app.command()
@handles_errors
def trust(
    record: Annotated[bool, typer.Option("--record/--no-record", help="Write the results into the ledger (peer.trust, peer.collusion_flag) where the policy declares them.")] = True,
    top: Annotated[int, typer.Option("--top", help="How many of the most trusted to print.")] = 10,
    as_json: JsonFlag = False,
):
    """Global trust (EigenTrust) over all ratings, and suspected rating rings."""
    with _open() as registry, _progress(not as_json) as bar:
        task = bar.add_task("EigenTrust", total=None)
        result = registry.trust(record=record, progress=lambda i, residual: bar.update(
            task, completed=i, description=f"EigenTrust (change {residual:.1e})"))
    if as_json:
        _print_json(result)
        return
    out.print(f"{result['subjects']} subjects, {result['ratings']} ratings: converged in {result['iterations']} "
              f"iterations; {len(result['rings'])} suspected ring(s); {result['recorded']} entries recorded.")
    table = Table("subject", "relative trust", title="Most trusted (1.0 = average)")
    for item in result["trust"][:top]:
        table.add_row(item["subject"], f"{item['relative_trust']:.3f}")
    out.print(table)
    for ring in result["rings"]:
        out.print(f"[yellow]ring[/] {_escape(ring['evidence'])}: {', '.join(ring['members'])}", highlight=False)


# -- tamper evidence ---------------------------------------------------------------------------


@app.command()
@handles_errors
def verify(as_json: JsonFlag = False):
    """Recompute the Merkle tree from every stored entry; exit 1 if anything was altered."""
    with _open() as registry, _progress(not as_json) as bar:
        task = bar.add_task("Verifying", total=registry.store.count_entries())
        report = registry.verify(progress=lambda n: bar.advance(task, n))
    if as_json:
        _print_json(report.to_dict())
    elif report.ok:
        out.print(f"[green]OK[/]: {report.entries} entries, {report.checkpoints} checkpoints, size {report.size}, root {report.root}")
    else:
        out.print(f"[red]NOT OK[/]: {len(report.problems)} problem(s) in {report.entries} entries")
        for problem in report.problems:
            out.print(f"  {_escape(problem['message'])}", highlight=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
@handles_errors
def root(as_json: JsonFlag = False):
    """The ledger's size and Merkle root (publish it; `consistency` proves later roots extend it)."""
    with _open() as registry:
        result = registry.root()
    _show(result, as_json, f"size {result['size']} root {result['root']}")


@app.command()
@handles_errors
def prove(
    entry: Annotated[int, typer.Argument(help="Entry number.")],
    size: Annotated[Optional[int], typer.Option("--size", help="Tree size to prove against (default: current).")] = None,
    as_json: JsonFlag = False,
):
    """An RFC 9162 inclusion proof that the entry is in the ledger."""
    with _open() as registry:
        result = registry.inclusion_proof(entry, size)
    _print_proof(result, as_json, f"entry #{entry} (leaf hash {result['leaf_hash']}) is in the tree of size "
                                  f"{result['size']} with root {result['root']}; audit path:")


@app.command()
@handles_errors
def consistency(
    old_size: Annotated[int, typer.Argument(help="The earlier tree size.")],
    size: Annotated[Optional[int], typer.Option("--size", help="The later tree size (default: current).")] = None,
    as_json: JsonFlag = False,
):
    """An RFC 9162 consistency proof: the later tree extends the earlier one, nothing rewritten."""
    with _open() as registry:
        result = registry.consistency_proof(old_size, size)
    _print_proof(result, as_json, f"{result['old_size']} → {result['new_size']}: {result['old_root']} → {result['new_root']}")


def _print_proof(result: dict, as_json: bool, headline: str) -> None:
    if as_json:
        _print_json(result)
        return
    out.print(headline)
    for node in result["proof"]:
        out.print(f"  {node}")


@app.command()
@handles_errors
def rebuild(as_json: JsonFlag = False):
    """Rebuild every materialized standing from the ledger and the policy in force."""
    with _open() as registry, _progress(not as_json) as bar:
        task = bar.add_task("Rebuilding standings", total=len(registry.store.subjects()))
        count = registry.rebuild_standings(progress=lambda n: bar.advance(task, n))
    if as_json:
        _print_json({"subjects": count})
    else:
        out.print(f"Rebuilt {count} standings.")


# -- policy ------------------------------------------------------------------------------------


@policy_app.command("list")
@handles_errors
def policy_list(as_json: JsonFlag = False):
    """The policy packs shipped with socialcredit."""
    packs = [load_policy(name) for name in pack_names()]
    result = [{"id": p.id, "version": p.version, "title": p.document.policy.title} for p in packs]
    if as_json:
        _print_json(result)
    else:
        for item in result:
            out.print(f"[bold]{item['id']}[/] {_escape(item['version'])}: {_escape(item['title'])}")


@policy_app.command("show")
@handles_errors
def policy_show(
    name: Annotated[Optional[str], typer.Argument(help="A pack name or TOML file (default: the registry's policy in force).")] = None,
    as_json: JsonFlag = False,
):
    """A policy's catalogue, dimensions, rules, tiers, lists and measures."""
    policy = _named_or_current_policy(name)
    document = policy.document.model_dump(mode="json")
    if as_json:
        _print_json({**document, "digest": policy.digest})
        return
    _print_policy(policy, name)


def _print_policy(policy, name: str | None) -> None:
    doc = policy.document
    meta = doc.policy
    out.print(f"[bold]{_escape(meta.title)}[/] ({_escape(policy.id)} {_escape(policy.version)}, "
              f"digest {policy.digest[:16]}…)", highlight=False)
    if meta.summary:
        out.print(_escape(meta.summary), highlight=False)
    for note in meta.approximations:
        out.print(f"  approximation: {_escape(note)}", highlight=False)
    scale = doc.scale
    zone = getattr(meta, "timezone", "UTC")
    out.print(f"Scale: {scale.min:g} to {scale.max:g} {_escape(scale.unit)}, a newcomer starts at {scale.base:g}; "
              f"dimensions combine by {scale.combine}" + (f"; calendar {_escape(zone)}" if zone != "UTC" else "") + ".",
              highlight=False)

    dims = _Grid("Dimensions", "dimension", "label", "aggregate", "weight", "details")
    for d in doc.dimensions:
        dims.row(d.id, d.label, d.aggregate, f"{d.weight:g}", _dimension_details(d))
    dims.print("dimension", "aggregate")

    events = _Grid("Event types", "type", "domain", "description", "attributes")
    for type_name, spec in doc.event_types.items():
        description = spec.description
        if len(spec.subject_kinds) == 1:
            description += " (people only)" if spec.subject_kinds[0] == "person" else " (organizations only)"
        attributes = "\n".join(_attribute_words(attr, a) for attr, a in spec.attributes.items()) or "—"
        events.row(type_name, spec.domain, description, attributes)
    events.print("type", "domain")

    if doc.rules:
        several = len(doc.dimensions) > 1
        rules = _Grid("Rules", "rule", "event", "match", "effect", "counts for", "at most")
        for r in doc.rules:
            cap = f"{r.max_per.count} {_PER[r.max_per.period]}" if r.max_per else ""
            rules.row(r.id, r.event, _match_words(r.match) or "any", _rule_effect(r, several), _rule_lifetime(r), cap)
        rules.print("event", "rule")
    else:
        out.print("No scoring rules: this policy works through lists.")

    if policy.tiers:
        out.print("Tiers: " + ", ".join(
            _escape(f"{t.id} from {t.min:g}" if t.min is not None else f"{t.id} below") for t in policy.tiers),
            highlight=False)

    for spec in doc.lists:
        notes = [f"one listing per {spec.case_attribute}"] if spec.case_attribute else []
        notes.append(f"at most {_words(spec.max_total)} in all, extensions included" if spec.max_total
                     else "no maximum")
        triggers = _Grid(f"List {spec.id}: {spec.label}", "trigger", "event", "match", "term",
                         caption="; ".join(notes))
        for enter in spec.enter:
            term = f"for {_words(enter.duration)}" if enter.duration else "no term: until a leave event"
            triggers.row("enter", enter.event, _match_words(enter.match) or "any", term)
        for leave in spec.leave:
            wait = f"not before {_words(leave.not_before)} on the list" if leave.not_before else "at once"
            triggers.row("leave", leave.event, _match_words(leave.match) or "any", wait)
        for ext in spec.extend:
            by = f"by {_words(ext.by)}" if ext.by else f"by {ext.by_attribute} × {_words(ext.unit)}"
            triggers.row("extend", ext.event, _match_words(ext.match) or "any", by)
        triggers.print("event", "trigger")

    if doc.measures:
        measures = _Grid("Measures", "measure", "when", "service", "effect")
        for m in doc.measures:
            measures.row(m.id, _condition_words(m.when, m.duration), m.service, m.effect)
        measures.print("service", "measure", "effect")
    label = f" {name}" if name is not None else ""
    out.print(f"Machine-readable: socialcredit policy show{_escape(label)} --json", highlight=False)


_PER = {"P1D": "a day", "P1W": "a week", "P1M": "a month", "P1Y": "a year"}


class _Grid:
    """A table of plain-text cells (policy text such as `[as reported]` is not Rich markup).

    Cells are laid out to the console's width: names in the `whole` columns (event types,
    services) stay on one line and other cells wrap between words while there is room for
    that; on a narrower console long words fold. Nothing is ever cut off with an ellipsis.
    """

    def __init__(self, title: str, *columns: str, caption: str | None = None):
        self.title, self.columns, self.caption = title, columns, caption
        self.rows: list[tuple[str, ...]] = []

    def row(self, *cells: str) -> None:
        self.rows.append(cells)

    def print(self, *whole: str) -> None:
        table = Table(title=_escape(self.title), title_justify="left", expand=False,
                      caption=_escape(self.caption) if self.caption else None, caption_justify="left")
        widths = self._widths(whole)
        for i, name in enumerate(self.columns):
            table.add_column(name, overflow="fold", width=widths[i] if widths else None)
        for cells in self.rows:
            table.add_row(*(Text(cell) for cell in cells))
        out.print(table)

    def _widths(self, whole: tuple[str, ...]) -> list[int] | None:
        """Column widths, or None to let Rich fold cells wherever it needs to."""
        room = out.width - (3 * len(self.columns) + 1)  # a border and two spaces per column
        texts = [[name, *(row[i] for row in self.rows)] for i, name in enumerate(self.columns)]
        natural = [max(len(line) for text in column for line in text.splitlines() or [""]) for column in texts]
        if sum(natural) <= room:
            return None
        longest_word = [max(len(word) for text in column for word in text.split() or [""]) for column in texts]
        # Keep as many `whole` columns (most important first) as fit; then words unbroken if possible.
        for keep in (whole[:k] for k in range(len(whole), 0, -1)):
            for smallest in (
                [n if name in keep else w for name, n, w in zip(self.columns, natural, longest_word)],
                [n if name in keep else min(n, max(5, *map(len, name.split()))) for name, n in zip(self.columns, natural)],
            ):
                spare = room - sum(smallest)
                if spare >= 0:
                    wanted = [n - s for n, s in zip(natural, smallest)]
                    total = sum(wanted) or 1
                    return [s + spare * want // total for s, want in zip(smallest, wanted)]
        return None


def _words(duration: str) -> str:
    return Duration.parse(duration).words()


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _number(value)


def _match_words(match: dict) -> str:
    """`{"trigger": ["a", "b"], "paid": false}` → `trigger a, b; paid false`."""
    parts = []
    for attribute, wanted in match.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        parts.append(f"{attribute} {', '.join(_scalar(v) for v in values)}")
    return "; ".join(parts)


def _attribute_words(name: str, spec) -> str:
    """`amount: number (required, min 0 max 100)`."""
    notes = []
    if spec.type == "reference":
        notes.append(f"a {spec.kind}")
    if spec.required:
        notes.append("required")
    if spec.values is not None:
        notes.append("values " + ", ".join(spec.values))
    bounds = " ".join(f"{label} {value:g}" for label, value in (("min", spec.min), ("max", spec.max))
                      if value is not None)
    if bounds:
        notes.append(bounds)
    if spec.type == "string" and spec.max_length != type(spec).model_fields["max_length"].default:
        notes.append(f"max length {spec.max_length}")
    return f"{name}: {spec.type}" + (f" ({', '.join(notes)})" if notes else "")


def _dimension_details(d) -> str:
    parts = []
    if d.aggregate == "rating_mean":
        parts.append(f"prior {d.prior_mean:g} (weight {d.prior_weight:g})")
        if d.window:
            parts.append(f"window last {d.window} ratings")
        if d.half_life:
            parts.append(f"half-life {_words(d.half_life)}")
        parts.append(f"category {d.category}" if d.category else "all categories")
    elif d.aggregate == "latest":
        parts.append(f"newest {d.event} {d.attribute}, counts for {_words(d.lifetime)}")
    elif d.base:
        parts.append(f"starts at {d.base:g}")
    if d.min is not None and d.max is not None:
        parts.append(f"range {d.min:g} to {d.max:g}")
    return "; ".join(parts)


def _rule_effect(r, name_dimension: bool) -> str:
    parts = []
    if r.points:
        parts.append(f"{r.points:+g} {r.dimension}" if name_dimension else f"{r.points:+g}")
    if r.score_cap is not None:
        parts.append(f"score at most {r.score_cap:g}")
    if r.negative_rating_multiplier is not None:
        parts.append(f"negative ratings weigh ×{r.negative_rating_multiplier:g}")
    return "; ".join(parts)


def _rule_lifetime(r) -> str:
    if r.counts_until is not None:
        after = Duration.parse(r.counts_until.after)
        text = f"while on {r.counts_until.list}" + (f", then {after.words()}" if after.months or after.micros else "")
    else:
        text = _words(r.lifetime)
    if r.half_life:
        text += f", half-life {_words(r.half_life)}"
    return text


def _condition_words(cond, duration: str | None = None) -> str:
    """`list judgment-defaulters`, `tier AAA, AA, A`, `score at least 600 unless on court-defaulters`."""
    if cond.list is not None:
        text = f"list {cond.list}"
        if duration is not None:
            text += f", first {_words(duration)}"
    elif cond.tier is not None:
        text = f"tier {', '.join(cond.tier)}"
    elif cond.score_below is not None:
        text = f"score below {cond.score_below:g}"
    elif cond.score_at_least is not None:
        text = f"score at least {cond.score_at_least:g}"
    elif cond.below is not None:
        text = f"{cond.dimension} below {cond.below:g}"
    else:
        text = f"{cond.dimension} at least {cond.at_least:g}"
    if cond.unless_list:
        text += f" unless on {' or '.join(cond.unless_list)}"
    return text


@policy_app.command("lint")
@handles_errors
def policy_lint(
    name: Annotated[Optional[str], typer.Argument(help="A pack name or TOML file (default: the registry's policy in force).")] = None,
    as_json: JsonFlag = False,
):
    """Name cross-context sanctions, protected attributes and disproportionate measures. Exit 1 on errors."""
    from .policy.lint import lint, summarize

    policy = _named_or_current_policy(name)
    findings = lint(policy)
    counts = summarize(findings)
    if as_json:
        _print_json({"policy": policy.ref(), "summary": counts, "findings": [f.to_dict() for f in findings]})
    else:
        colour = {"error": "red", "warning": "yellow", "info": "blue"}
        for f in findings:
            out.print(f"[{colour[f.severity]}]{f.severity}[/] [bold]{f.code}[/] {_escape(f.subject)}: "
                      f"{_escape(f.message)} ({_escape(f.reference)})", highlight=False)
        out.print(", ".join(f"{n} {k}" for k, n in counts.items()))
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(1)


@policy_app.command("activate")
@handles_errors
def policy_activate(
    name: Annotated[str, typer.Argument(help="A pack name or TOML file.")],
    as_json: JsonFlag = False,
):
    """Put a policy in force from now (a ledger entry) and rebuild every standing.

    First prints (on stderr) the linter's summary of the policy and the event types recorded
    in the ledger that its catalogue lacks: those records stop counting under it.
    """
    from .policy.lint import lint, summarize

    policy = load_policy(name)
    counts = summarize(lint(policy))
    with _open() as registry:
        dropped = sorted(_recorded_event_types(registry) - set(policy.event_types))
        err.print(f"lint: {_count(counts['error'], 'error')}, {_count(counts['warning'], 'warning')}, "
                  f"{counts['info']} info — see `socialcredit policy lint {name}`", markup=False, highlight=False,
                  soft_wrap=True)
        if dropped:
            shown = ", ".join(dropped[:10]) + (f", … and {len(dropped) - 10} more" if len(dropped) > 10 else "")
            verb = "stops" if len(dropped) == 1 else "stop"
            err.print(f"warning: {_count(len(dropped), 'recorded event type')} {verb} counting under {policy.id}: "
                      f"{shown}", markup=False, highlight=False, soft_wrap=True)
        seq = registry.activate(policy)
        result = {"entry": seq, "policy": policy.ref(), **registry.root(), "lint": counts,
                  "dropped_event_types": dropped}
    if as_json:
        _print_json(result)
    else:
        out.print(f"Policy {_escape(policy.id)} {_escape(policy.version)} in force from entry #{seq}.", highlight=False)


def _recorded_event_types(registry: Registry) -> set[str]:
    """The distinct event types in the ledger."""
    with registry.store.engine.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql("SELECT DISTINCT type FROM entries WHERE type IS NOT NULL")}


def _to_the_second(text: str) -> str:
    """`2026-03-01T08:00:00.123456Z` → `2026-03-01T08:00:00Z`; other text unchanged."""
    return _FRACTION.sub("Z", text)


_FRACTION = re.compile(r"(?<=T\d\d:\d\d:\d\d)\.\d+Z$")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# -- audit -------------------------------------------------------------------------------------


@app.command()
@handles_errors
def audit(
    ref: Annotated[Optional[str], typer.Argument(help="Only reads about this subject (national ID, unified social credit code or username).")] = None,
    kind: KindOption = "person",
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many of the newest records to show.")] = 100,
    as_json: JsonFlag = False,
):
    """The audit log, newest first: who read whose standing, when and why. This read is logged too."""
    with _open() as registry:
        result = registry.audit(ref, kind=_kind(kind), limit=limit)
    if as_json:
        _print_json(result)
        return
    if not result["entries"]:
        out.print("No reads logged" + (" about this subject." if ref is not None else "."))
        return
    table = _Grid("Audit log, newest first", "time", "principal", "action", "subject", "detail")
    for item in result["entries"]:
        subject = item["subject"] or "—"
        detail = ", ".join(f"{k} {_to_the_second(_scalar(v))}" for k, v in item["detail"].items() if v is not None)
        table.row(item["at"][:19] + "Z", item["principal"], item["action"],
                  subject[:12] + "…" if len(subject) > 13 else subject, detail)
    table.print("time", "action", "subject", "principal")


# -- demo --------------------------------------------------------------------------------------


@app.command()
@handles_errors
def demo(
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed builds the same town.")] = 7,
    residents: Annotated[int, typer.Option("--residents", min=10, help="Number of residents.")] = 10_000,
    businesses: Annotated[int, typer.Option("--businesses", min=0, help="Number of businesses.")] = 300,
    policy: Annotated[str, typer.Option("--policy", help="The pack to run the town under.")] = "rongcheng",
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="End of the simulated year (default: today, 00:00 UTC).")] = None,
    as_json: JsonFlag = False,
):
    """Build a synthetic town, a year of its events, and show what the policy does to it."""
    from .sim.demo import run_demo

    run_demo(settings.db, settings.key_file, seed=seed, residents=residents, businesses=businesses,
             policy=policy, as_json=as_json, console=out, progress=_progress(not as_json), as_of=as_of)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
