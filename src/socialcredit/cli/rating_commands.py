"""People rating people: rate, enrol, reviews, respond, trust."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InvalidInput
from .app import (ApiKeyOption, AtOption, JsonFlag, ServerOption, app, caller, escape, handles_errors, open_registry, out,
                  print_json, progress, reference, say, show)
from .grid import Grid


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
    server: ServerOption = None,
    api_key: ApiKeyOption = None,
):
    """Rate a subject after an interaction; the weight is fixed now from the rater's standing."""
    with open_registry(server, api_key) as registry:
        result = registry.rate(reference(rater), reference(ratee), stars, interaction=interaction, category=category, review=review, at=at)
    if as_json:
        print_json(result)
    elif result.duplicate:
        out.print("Already recorded: the same rating of the same interaction (nothing new written).")
    else:
        say(f"Rating recorded as entry #{result.entry}, weight {result.weight:g}: {result.why_this_weight}.")


@app.command()
@handles_errors
def enrol(
    ref: Annotated[str, typer.Argument(help="The subject who joins (or leaves) the rating app.")],
    leave: Annotated[bool, typer.Option("--out", help="Opt out instead of in.")] = False,
    attribute: Annotated[Optional[list[str]], typer.Option("--attribute", "-a", help="NAME=VALUE, once for each fact the policy asks of an opt-in (e.g. age=30).")] = None,
    at: AtOption = None,
    as_json: JsonFlag = False,
):
    """Opt in to rating (peer.opt_in) or out of it (peer.opt_out).

    The policy in force may require facts of an opt-in, each given as --attribute NAME=VALUE.
    Peeple requires age (21 or more), phone_verified=verified, real_name=verified and
    account_age_days (183 or more); Nosedive requires none. For any policy they are the
    required attributes of peer.opt_in in `socialcredit policy show`.
    """
    attributes = {}
    for item in attribute or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--attribute {item!r} is not NAME=VALUE")
        attributes[name.strip()] = value.strip()
    with open_registry() as registry:
        if not leave:
            _require_opt_in_facts(registry.policy, attributes)
        result = registry.enrol(reference(ref), leave=leave, at=at, attributes=attributes)
    show(result, as_json, f"{'Opted out' if leave else 'Opted in'} (entry #{result.entry}).")


OPT_IN = "peer.opt_in"  # the enrolment event every policy with ratings accepts (policy/schema.py)


def _require_opt_in_facts(policy, given: dict[str, str]) -> None:
    """Refuse an opt-in that lacks facts the policy requires, naming each and how to give it."""
    spec = policy.event_types.get(OPT_IN)
    if spec is None:
        return  # a policy without ratings: the registry says so
    missing = [name for name, attribute in spec.attributes.items() if attribute.required and name not in given]
    if not missing:
        return
    needed = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
    options = " ".join(f"--attribute {name}={_example_value(spec.attributes[name])}" for name in missing)
    raise InvalidInput(f"the {policy.id} policy's opt-in ({OPT_IN}) requires {needed}: give "
                       f"{'it' if len(missing) == 1 else 'each'} as --attribute NAME=VALUE, e.g. {options}")


def _example_value(attribute) -> str:
    """A value the attribute accepts, for an example: its first allowed value, its minimum, ..."""
    if attribute.values:
        return attribute.values[0]
    if attribute.type in ("integer", "number") and attribute.min is not None:
        return f"{attribute.min:g}"
    return {"boolean": "true", "integer": "1", "number": "1"}.get(attribute.type, "VALUE")


@app.command()
@handles_errors
def reviews(
    ref: Annotated[str, typer.Argument(help="The subject whose reviews to show (what they see).")],
    at: AtOption = None,
    as_json: JsonFlag = False,
):
    """The ratings about a subject: stars, weight and why, held ones marked, replies."""
    with open_registry() as registry:
        result = registry.reviews(reference(ref), at=at, caller=caller())
    if as_json:
        print_json(result)
        return
    dims = ", ".join(f"{k} {v}" for k, v in result.dimensions.items())
    out.print(f"[bold]Score {result.score}[/] ({escape(dims)}), {len(result.reviews)} rating(s), at {result.at}")
    for item in result.reviews:
        mark = "[yellow]HELD[/] " if item.held else ("[red]DISPUTED[/] " if item.status == "disputed" else "")
        category = f" [{item.category}]" if item.category else ""
        out.print(f"{mark}#{item.entry} {item.occurred_on} {'★' * item.stars}{'☆' * (5 - item.stars)}"
                  f"{escape(category)} weight {item.weight:g}: {escape(item.why_this_weight)}", highlight=False)
        if item.review:
            say(f"    “{item.review}”")
        if item.held:
            say(f"    {item.explanation}")
        for reply in item.replies:
            say(f"    reply #{reply.entry}: {reply.text}")


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
    with open_registry() as registry:
        result = registry.respond(reference(ref), entry, reply=reply, dispute=dispute, at=at)
    show(result, as_json, f"{'Reply' if reply is not None else 'Dispute'} recorded as entry #{result.entry}.")


@app.command()
@handles_errors
def trust(
    record: Annotated[bool, typer.Option("--record/--no-record", help="Write the results into the ledger (peer.trust, peer.collusion_flag) where the policy declares them; by default nothing is written.")] = False,
    top: Annotated[int, typer.Option("--top", help="How many of the most trusted to print.")] = 10,
    names: Annotated[Optional[Path], typer.Option("--names", help="A file of references (usernames), one per line: show these instead of their pseudonyms.")] = None,
    as_json: JsonFlag = False,
):
    """Global trust (EigenTrust) over all ratings, and suspected rating rings."""
    with open_registry() as registry, progress(not as_json) as bar:
        task = bar.add_task("EigenTrust", total=None)
        result = registry.trust(record=record, caller=caller(), progress=lambda i, residual: bar.update(
            task, completed=i, description=f"EigenTrust (change {residual:.1e})"))
    if as_json:
        print_json(result)
        return
    written = f"{result.recorded} entries recorded" if record else "nothing recorded (add --record to write it)"
    out.print(f"{result.subjects} subjects, {result.ratings} ratings: converged in {result.iterations} "
              f"iterations; {len(result.rings)} suspected ring(s); {written}.")
    named = _known_names(names, result) if names else {}
    table = Grid("Most trusted (1.0 = average)", "subject", "relative trust")
    for item in result.trust[:top]:
        table.row(named.get(item.subject, item.subject), f"{item.relative_trust:.3f}")
    table.print("subject")
    for ring in result.rings:
        say(f"ring {ring.evidence}: {', '.join(named.get(m, m) for m in ring.members)}")


def _known_names(path: Path, result) -> dict[str, str]:
    """Pseudonym → reference for the references in a file (one per line) that the caller knows:
    the ledger keeps only pseudonyms, so the caller brings the names it may see."""
    from ..errors import NotFound

    if not path.is_file():
        raise NotFound(f"{path}: no such file (give a file of references, one per line)")
    with open_registry() as registry:
        return registry.name_pseudonyms(line.strip() for line in path.read_text(encoding="utf-8").splitlines()
                                        if line.strip())
