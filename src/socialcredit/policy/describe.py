"""A policy in words: what `policy show` prints and the pages will show.

`describe(policy)` turns the compiled document into blocks a front door lays out: a
heading, lines of text, and tables of plain-text cells (with the columns that should not
be broken, most important first). Nothing here prints or knows the terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..instants import Duration
from .compiled import Policy


@dataclass(frozen=True, slots=True)
class Heading:
    text: str


@dataclass(frozen=True, slots=True)
class Line:
    text: str


@dataclass(slots=True)
class Grid:
    title: str
    columns: tuple[str, ...]
    keep_whole: tuple[str, ...]  # columns whose cells should stay on one line, most important first
    rows: list[tuple[str, ...]] = field(default_factory=list)
    caption: str | None = None

    def row(self, *cells: str) -> None:
        self.rows.append(cells)


Block = Heading | Line | Grid


def describe(policy: Policy) -> list[Block]:
    doc = policy.document
    meta = doc.policy
    blocks: list[Block] = [Heading(f"{meta.title} ({policy.id} {policy.version}, digest {policy.digest[:16]}…)")]
    if meta.summary:
        blocks.append(Line(meta.summary))
    blocks.extend(Line(f"  approximation: {note}") for note in meta.approximations)
    scale = doc.scale
    zone = getattr(meta, "timezone", "UTC")
    blocks.append(Line(f"Scale: {scale.min:g} to {scale.max:g} {scale.unit}, a newcomer starts at {scale.base:g}; "
                       f"dimensions combine by {scale.combine}" + (f"; calendar {zone}" if zone != "UTC" else "") + "."))

    dims = Grid("Dimensions", ("dimension", "label", "aggregate", "weight", "details"), ("dimension", "aggregate"))
    for d in doc.dimensions:
        dims.row(d.id, d.label, d.aggregate, f"{d.weight:g}", _dimension_details(d))
    blocks.append(dims)

    events = Grid("Event types", ("type", "domain", "description", "attributes"), ("type", "domain"))
    for type_name, spec in doc.event_types.items():
        description = spec.description
        if len(spec.subject_kinds) == 1:
            description += " (people only)" if spec.subject_kinds[0] == "person" else " (organizations only)"
        attributes = "\n".join(_attribute_words(attr, a) for attr, a in spec.attributes.items()) or "—"
        events.row(type_name, spec.domain, description, attributes)
    blocks.append(events)

    if doc.rules:
        several = len(doc.dimensions) > 1
        rules = Grid("Rules", ("rule", "event", "match", "effect", "counts for", "at most"), ("event", "rule"))
        for r in doc.rules:
            cap = f"{r.max_per.count} {_PER[r.max_per.period]}" if r.max_per else ""
            rules.row(r.id, r.event, _match_words(r.match) or "any", _rule_effect(r, several), _rule_lifetime(r), cap)
        blocks.append(rules)
    else:
        blocks.append(Line("No scoring rules: this policy works through lists."))

    if policy.tiers:
        blocks.append(Line("Tiers: " + ", ".join(
            f"{t.id} from {t.min:g}" if t.min is not None else f"{t.id} below" for t in policy.tiers)))

    for spec in doc.lists:
        notes = [f"one listing per {spec.case_attribute}"] if spec.case_attribute else []
        notes.append(f"at most {_words(spec.max_total)} in all, extensions included" if spec.max_total
                     else "no maximum")
        triggers = Grid(f"List {spec.id}: {spec.label}", ("trigger", "event", "match", "term"), ("event", "trigger"),
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
        blocks.append(triggers)

    if doc.measures:
        measures = Grid("Measures", ("measure", "when", "service", "effect"), ("service", "measure", "effect"))
        for m in doc.measures:
            measures.row(m.id, _condition_words(m.when, m.duration), m.service, m.effect)
        blocks.append(measures)
    return blocks


_PER = {"P1D": "a day", "P1W": "a week", "P1M": "a month", "P1Y": "a year"}


def _words(duration: str) -> str:
    return Duration.parse(duration).words()


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def scalar_words(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _number(value)


def _match_words(match: dict) -> str:
    """`{"trigger": ["a", "b"], "paid": false}` → `trigger a, b; paid false`."""
    parts = []
    for attribute, wanted in match.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        parts.append(f"{attribute} {', '.join(scalar_words(v) for v in values)}")
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
