"""The policy linter: names what a policy does that accountable scoring forbids or questions.

`lint(policy)` runs every check in `CHECKS` and returns `Finding`s, errors first. Each check
is a small function `Policy -> iterable of Finding`; adding one is one line in `CHECKS`.

Each finding has a code: `CODES` below says, per code, its severity, what it reports and
the legal text or principle behind it (docs/policies.md shows them as a table generated
from it).

Definitions the checks share, stated once:

- **Context** of a measure: every segment of its service's dotted path (`transport`, `rail`
  and `high_speed` of `transport.rail.high_speed`). Domain of an event: its event type's
  declared `domain`. A measure is in the same context as its trigger events when the domain
  of at least one of them equals ANY segment of the service path, not only the first: the
  railway's own ban on `transport.rail`, entered by `rail.serious_misconduct` events (domain
  `rail`), stays in context, while a court listing (domain `court`) that denies
  `transport.air` (segments `transport`, `air`) is cross-context. The comparison is literal
  and per whole segment: a `rail` event does not match `railway.tickets`, nor `transport`.
- **Events that can trigger a measure**: for a `list` condition, the events of that list's
  `enter` triggers; for `tier`, `score_below` and `score_at_least`, every event type of a rule
  that moves the total score (points in a dimension of non-zero weight, or a `score_cap`),
  the rating event (`[ratings] event`) when a `rating_mean` dimension of non-zero weight
  averages it, and the `event` of a `latest` dimension of non-zero weight; for a `dimension`
  condition, the events of the rules with points in that dimension, plus the rating event
  or the `latest` event that dimension is built from. `unless_list` exempts people and
  triggers nothing, so it is ignored.
- **Adverse** effects: `deny`, `deposit_required`, `extra_inspection`. The other effects
  (discounts, privileges, ...) are perks.
- **Score move** of a rule: how far one event can move the total score. With `combine =
  "sum"` it is |points| × the dimension's weight; with `combine = "weighted"` it is the
  dimension's share of the total weight × |points| as a fraction of the dimension's range ×
  the scale's range. A `score_cap` moves a subject at the starting score by (start − cap).
- **Minor** trigger of a list: an `enter` trigger whose event (with a compatible `match`)
  is deducted by some rule whose score move is at most 0.5 % of the scale's range (10 points
  on Rongcheng's 0–2,000 range: one traffic ticket, one month of bank arrears), or whose
  attributes select a value that says so (`minor`, `petty`, `trivial`, `slight`,
  `negligible`) — including a trigger that does not filter out such a value of an
  attribute that allows one (a list entered by every `severity` is entered by the minor one).
- **Unbounded** listing: a list entered by a trigger with no `duration` and left by no
  `leave` trigger (`max_total` bounds extensions only, not an open-ended entry). A rule with
  `counts_until` such a list (entered by the rule's own event) counts forever.
- **Protected words** are matched case-insensitively on word boundaries, after `_` becomes a
  space, in ids, names, labels, descriptions, notices and allowed/matched values. Service
  names, legal bases and remedies are not searched: a sanction on a `health.hospital` service
  is where a measure applies, not data about the subject (cross-context and disproportion
  checks cover that). `health` counts when it is about a person, not in "health insurance",
  "health care/centre/authority/services/...", "public health"; "faith" not in "good/bad
  faith"; "expression" not in "regular expression".

Messages use words that agree with the count: "to grade D" but "to grades C, D", "events of
a single type" but "any mix of 3 event types", "1 point" but "5 points", "the event that puts
... comes" but "the events that put ... all come", "path segment" but "path segments".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from .compiled import CompiledMeasure, CompiledRule, Policy

Severity = Literal["error", "warning", "info"]
SEVERITIES = ("error", "warning", "info")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}

ADVERSE_EFFECTS = frozenset({"deny", "deposit_required", "extra_inspection"})
AGGREGATE_KINDS = frozenset({"tier", "score_below", "score_at_least"})
MINOR_SHARE = 0.005  # a "minor" deduction: at most 0.5 % of the scale's range
BIG_SHARE = 0.25  # a single event moving the score by more than 25 % of the range
MINOR_WORDS = ("minor", "petty", "trivial", "slight", "negligible")

REF_CROSS_CONTEXT = "EU AI Act Art. 5(1)(c)(i)"
REF_PROTECTED = (
    "GDPR Art. 9; EU AI Act Art. 5(1)(c); project rule: no scoring of political opinion, "
    "religion, ethnicity, union membership, health or speech"
)
REF_DURATION = "EU AI Act Art. 5(1)(c)(ii) (proportionality); FCRA 7-year rule"
REF_AGGREGATE = "EU AI Act Art. 5(1)(c); GDPR Art. 22"
REF_DISPROPORTIONATE = "EU AI Act Art. 5(1)(c)(ii)"
REF_LEGAL_BASIS = "GDPR Art. 6(1) (lawfulness); principle of legality: no sanction without a law"
REF_REMEDY = "GDPR Art. 22(3) (right to contest); FCRA adverse-action notice"
REF_APPEAL = "GDPR Art. 16 and 22(3); FCRA dispute and reinvestigation (30 days)"


@dataclass(frozen=True, slots=True)
class Code:
    """What a finding code means: one severity and one reference wherever a check raises it."""

    severity: Severity
    reports: str  # what it reports, one sentence (the table in docs/policies.md)
    reference: str


CODES: dict[str, Code] = {
    "protected-attribute": Code(
        "error",
        "An event type, attribute, rule, list, dimension or measure that refers to political opinion, "
        "religion, ethnicity, union membership, health, sexual orientation, speech or assembly.",
        REF_PROTECTED,
    ),
    "cross-context": Code(
        "warning",
        "A measure whose service path contains none of the domains of the events that can trigger it.",
        REF_CROSS_CONTEXT,
    ),
    "no-duration": Code(
        "warning",
        "An adverse measure that can last forever: on a list that nothing ends, or held in place by a "
        "rule that counts while such a listing lasts.",
        REF_DURATION,
    ),
    "aggregate-score-only": Code(
        "warning",
        "An adverse measure triggered by the aggregate score or tier.",
        REF_AGGREGATE,
    ),
    "disproportionate": Code(
        "warning",
        "An adverse measure on a list that a minor matter can put a subject on; a rule whose single "
        f"event moves the score by more than {BIG_SHARE:.0%} of its range.",
        REF_DISPROPORTIONATE,
    ),
    "no-legal-basis": Code(
        "warning",
        "An adverse measure without a `legal_basis`.",
        REF_LEGAL_BASIS,
    ),
    "open-ended-listing": Code(
        "info",
        "A list entered with no time limit that ends only when the subject acts (an exit event).",
        REF_DURATION,
    ),
    "no-remedy": Code(
        "info",
        "A measure without a `remedy`.",
        REF_REMEDY,
    ),
    "no-appeal-path": Code(
        "info",
        "A list with no `leave` trigger.",
        REF_APPEAL,
    ),
}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str  # stable kebab-case id, e.g. "cross-context"
    severity: Severity  # "error" | "warning" | "info"
    subject: str  # what it is about, e.g. "measure 'no-flights'"
    message: str  # one plain sentence naming the concrete things
    reference: str  # the legal text or principle

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


Check = Callable[[Policy], Iterable[Finding]]


def _finding(code: str, subject: str, message: str) -> Finding:
    """A finding of `code`, with the severity and reference that `CODES` gives it."""
    meaning = CODES[code]
    return Finding(code, meaning.severity, subject, message, meaning.reference)


# -- shared helpers --------------------------------------------------------------------------


def _q(name: str) -> str:
    return f"'{name}'"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")


def _plural(count: float, singular: str, plural: str | None = None) -> str:
    """`singular` when `count` is exactly 1, else `plural` (default: `singular` + "s")."""
    return singular if count == 1 else (plural if plural is not None else singular + "s")


def _count(count: float, singular: str, plural: str | None = None) -> str:
    """The number and the word that agrees with it: "1 point", "5 points", "2.5 points"."""
    return f"{_number(count)} {_plural(count, singular, plural)}"


def _percent(share: float) -> str:
    text = f"{share * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _effect_phrase(measure: CompiledMeasure) -> str:
    service = _q(measure.service)
    return {
        "deny": f"denies {service}",
        "allow": f"allows {service}",
        "privilege": f"grants a privilege on {service}",
        "discount": f"gives a discount on {service}",
        "deposit_free": f"waives the deposit for {service}",
        "deposit_required": f"requires a deposit for {service}",
        "fast_track": f"fast-tracks {service}",
        "priority": f"gives priority on {service}",
        "extra_inspection": f"orders extra inspections on {service}",
    }.get(measure.effect, f"applies {measure.effect} to {service}")


def _condition_phrase(policy: Policy, measure: CompiledMeasure) -> str:
    kind = measure.kind
    if kind == "list":
        return f"to anyone on list {_q(measure.list_id)}"
    if kind == "tier":
        tiers = sorted(measure.tiers)
        return f"to {_plural(len(tiers), 'grade')} " + ", ".join(tiers)
    if kind == "score_below":
        return f"to scores below {_number(measure.threshold)}"
    if kind == "score_at_least":
        return f"to scores of {_number(measure.threshold)} or more"
    dimension = policy.dimensions[measure.dimension].id
    word = "below" if kind == "dimension_below" else "of at least"
    return f"to a {_q(dimension)} dimension {word} {_number(measure.threshold)}"


def service_segments(service: str) -> list[str]:
    """The segments of a dotted service path: `transport.rail` -> ["transport", "rail"]."""
    return [segment for segment in service.split(".") if segment]


def _segments_phrase(service: str) -> str:
    segments = service_segments(service)
    return f"the service {service} ({_plural(len(segments), 'path segment')} {', '.join(segments)})"


def _scale_range(policy: Policy) -> float:
    return float(policy.scale.max - policy.scale.min)


def _moves_score(policy: Policy, rule: CompiledRule) -> bool:
    if rule.score_cap is not None:
        return True
    return bool(rule.points) and rule.dimension >= 0 and policy.dimensions[rule.dimension].weight > 0


def _feeding_rules(policy: Policy, measure: CompiledMeasure) -> list[CompiledRule]:
    """Rules whose events can change what a score/tier/dimension condition sees."""
    if measure.kind in AGGREGATE_KINDS:
        return [r for r in policy.rules if _moves_score(policy, r)]
    if measure.kind in ("dimension_below", "dimension_at_least"):
        return [r for r in policy.rules if r.points and r.dimension == measure.dimension]
    return []


def _aggregate_events(policy: Policy, index: int) -> set[str]:
    """The events a `rating_mean` or `latest` dimension is built from (none for `sum`)."""
    dimension = policy.dimensions[index]
    if dimension.aggregate == "rating_mean" and policy.ratings is not None:
        return {policy.ratings.event}
    if dimension.aggregate == "latest" and dimension.event:
        return {dimension.event}
    return set()


def trigger_events(policy: Policy, measure: CompiledMeasure) -> list[str]:
    """The event types that can trigger `measure`'s condition, sorted, without repeats."""
    if measure.kind == "list":
        events = {entry.event for entry in policy.lists[measure.list_id].enter}
    else:
        events = {rule.event for rule in _feeding_rules(policy, measure)}
        if measure.kind in AGGREGATE_KINDS:
            indexes = [i for i, d in enumerate(policy.dimensions) if d.weight > 0]
        else:
            indexes = [measure.dimension]
        for index in indexes:
            events |= _aggregate_events(policy, index)
    return sorted(event for event in events if event in policy.event_types)


def _events_by_domain(policy: Policy, events: Iterable[str], per_domain: int = 3) -> str:
    grouped: dict[str, list[str]] = {}
    for event in events:
        grouped.setdefault(policy.event_types[event].domain, []).append(event)
    parts = []
    for domain in sorted(grouped):
        names = sorted(grouped[domain])
        shown = ", ".join(names[:per_domain])
        if len(names) > per_domain:
            shown += f" and {len(names) - per_domain} more"
        parts.append(f"{domain} ({shown})")
    return "; ".join(parts)


def _match_sets(match) -> dict[str, frozenset]:
    """A document `match` dict or a compiled match tuple, as {attribute: allowed values}."""
    items = match.items() if isinstance(match, dict) else match
    sets = {}
    for name, wanted in items:
        values = wanted if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
        sets[name] = frozenset(values)
    return sets


def _compatible(a, b) -> bool:
    """True when some event could satisfy both matches."""
    sa, sb = _match_sets(a), _match_sets(b)
    return all(sa[name] & sb[name] for name in sa.keys() & sb.keys())


def _base_score(policy: Policy) -> float:
    scale = policy.scale
    if scale.combine == "sum":
        return float(min(max(scale.base, scale.min), scale.max))
    total_weight = sum(d.weight for d in policy.dimensions)
    if total_weight <= 0:
        return float(scale.min)
    weighted = sum(
        d.weight * (min(max(d.base, d.min), d.max) - d.min) / (d.max - d.min) for d in policy.dimensions
    )
    return scale.min + _scale_range(policy) * weighted / total_weight


def points_move(policy: Policy, rule: CompiledRule) -> float:
    """How far the points of one event of `rule` can move the total score (scale units)."""
    if not rule.points or rule.dimension < 0:
        return 0.0
    dimension = policy.dimensions[rule.dimension]
    if policy.scale.combine == "sum":
        return abs(rule.points) * dimension.weight
    total_weight = sum(d.weight for d in policy.dimensions)
    span = dimension.max - dimension.min
    if total_weight <= 0 or span <= 0:
        return 0.0
    return _scale_range(policy) * (dimension.weight / total_weight) * min(abs(rule.points), span) / span


def cap_move(policy: Policy, rule: CompiledRule) -> float:
    """How far a `score_cap` pulls down a subject who is at the starting score."""
    if rule.score_cap is None:
        return 0.0
    return max(0.0, _base_score(policy) - rule.score_cap)


def _minor_words_in(values: Iterable) -> list[str]:
    found = []
    for value in values:
        if isinstance(value, str) and _MINOR_RE.search(_normalize(value)):
            found.append(value)
    return found


_MINOR_RE = re.compile(r"\b(?:" + "|".join(MINOR_WORDS) + r")\b")


def minor_reason(policy: Policy, entry) -> str | None:
    """Why a list `enter` trigger is a minor matter (plain words), or None if it is not."""
    scale_range = _scale_range(policy)
    if scale_range > 0:
        for rule in policy.rules_by_event.get(entry.event, ()):
            if rule.points >= 0 or not _compatible(rule.match, entry.match):
                continue
            move = points_move(policy, rule)
            if 0 < move <= MINOR_SHARE * scale_range:
                return (
                    f"{entry.event}, which rule {_q(rule.id)} deducts only {_count(move, 'point')} "
                    f"({_percent(move / scale_range)} of the score range)"
                )
    wanted = _match_sets(entry.match)
    for name, spec in sorted(policy.event_types[entry.event].attributes.items()):
        if name in wanted:
            hits = _minor_words_in(sorted(v for v in wanted[name] if isinstance(v, str)))
        else:
            hits = _minor_words_in(spec.values or ())
        if hits:
            return f"{entry.event} even when its {name} is {_q(hits[0])}"
    return None


def _open_entries(spec) -> list:
    return [entry for entry in spec.enter if entry.duration is None]


def _unbounded(spec) -> bool:
    return bool(_open_entries(spec)) and not spec.leave


# -- checks ----------------------------------------------------------------------------------


def check_cross_context(policy: Policy) -> Iterable[Finding]:
    for measure in policy.measures:
        events = trigger_events(policy, measure)
        if not events:
            continue  # nothing can trigger it, so nothing spills over
        domains = {policy.event_types[e].domain for e in events}
        if domains & set(service_segments(measure.service)):
            continue  # some trigger event's domain is a segment of the service path
        one = len(events) == 1
        moves = "the event that moves" if one else "the events that move"
        if measure.kind == "list":
            puts = "the event that puts" if one else "the events that put"
            source = f"{puts} a subject on list {_q(measure.list_id)}"
        elif measure.kind in AGGREGATE_KINDS:
            source = f"{moves} the score it depends on"
        else:
            source = f"{moves} the {_q(policy.dimensions[measure.dimension].id)} dimension it depends on"
        verb = "comes" if one else "all come"
        where = "a domain that is not a segment" if len(domains) == 1 else "domains that are not segments"
        yield _finding(
            "cross-context",
            f"measure {_q(measure.id)}",
            f"Measure {_q(measure.id)} {_effect_phrase(measure)}, but {source} {verb} from {where} of "
            f"{_segments_phrase(measure.service)}: {_events_by_domain(policy, events)}.",
        )


# "dating" is deliberately NOT a protected word (Peeple's review category `dating`, its
# `dating` dimension). It names the setting in which the reviewer met the subject, like
# "personal" or "professional"; it does not say whom the subject dates, so it reveals no
# sexual orientation, and a review category is not a record of anyone's sex life. What is
# protected is matched by the "sexual orientation" entry below ("sex life", "sexuality",
# "gay", ...), which a dating review's attributes or labels would still trip if they
# recorded it. Flagging "dating" would make every review app an error without naming any
# special-category data it holds.
_PROTECTED: tuple[tuple[str, str], ...] = (
    (
        "political opinion",
        r"politic(?:s|al|ally)?|party members?|party membership|political part(?:y|ies)"
        r"|vot(?:e|es|ed|ing|er|ers)|elections?|ideolog(?:y|ies|ical)|dissidents?",
    ),
    (
        "religion",
        r"religio(?:n|ns|us)|(?<!good )(?<!bad )faiths?|churche?s?|mosques?|temples?|synagogues?"
        r"|worship(?:s|ped|ping|pers)?|pray(?:s|ed|ing|ers?)?|muslims?|islam(?:ic)?"
        r"|christians?|christianity|buddhis(?:t|ts|m)|catholics?|protestants?|jews|jewish"
        r"|hindus?|hinduism|sikhs?|atheis(?:t|ts|m)|clergy|cults?|scriptures?|bibles?"
        r"|qur'?an|koran|halal|kosher|falun gong",
    ),
    (
        "ethnicity or race",
        r"ethnic(?:ity|ities|ally)?|races?|racial(?:ly)?|skin colou?r|national origin|ancestry"
        r"|indigenous|castes?|uy(?:g|gh)urs?|uighurs?|tibetans?",
    ),
    (
        "trade-union membership",
        r"trade unions?|labou?r unions?|union (?:members?|membership|dues|activit(?:y|ies)|organi[sz]ing)"
        r"|unioni[sz](?:e|ed|es|ing|ation)|collective bargaining|industrial action|walkouts?",
    ),
    (
        "health",
        r"(?<!public )health(?!\s+(?:insurance|insurer|care|centres?|centers?|authorit(?:y|ies)"
        r"|department|facilit(?:y|ies)|services?|sector|ministry|inspectors?)\b)"
        r"|medical (?:conditions?|records?|history|diagnos(?:is|es)|data)|diagnos(?:is|es|ed)"
        r"|illness(?:es)?|diseases?|disabilit(?:y|ies)|disabled|mental(?:ly)? ill|psychiatric"
        r"|hiv|pregnan(?:t|cy|cies)|sick(?:ness|nesses)?|hospitali[sz](?:ed|ation|ations)"
        r"|addict(?:s|ed|ion|ions)?",
    ),
    (
        "sexual orientation",
        r"sexual orientation|sexuality|sex life|gender identity|gays?|lesbians?|bisexual(?:s|ity)?"
        r"|homosexual(?:s|ity)?|heterosexual(?:s|ity)?|transgender|lgbt\w*|queer",
    ),
    (
        "speech or expression",
        r"speech(?:es)?|(?<!regular )(?<!facial )expressions?|online comments?|comments? online"
        r"|comment(?:ed|ing) online|online posts?|posts? online|posted online"
        r"|(?<!job )(?<!public )posting(?!s? (?:of )?(?:the )?names)|social media"
        r"|blog(?:s|ger|gers|ging|ged)?|microblog\w*|weibo|tweet(?:s|ed|ing)?|rumou?rs?"
        r"|censor\w*|dissent(?:ing|ers?)?|critici[sz](?:e|ed|es|ing|m|ms)",
    ),
    (
        "assembly, protest or petitioning",
        r"protest(?:s|ed|ing|ers?)?|petition(?:s|ed|ing|ers?)?"
        r"|demonstrations?(?! (?:city|cities|zones?|projects?|areas?|programmes?|programs?)\b)"
        r"|rall(?:y|ies)|assembl(?:y|ies)(?! lines?\b)|(?:illegal|unlawful|mass|public) gatherings?"
        r"|mass incidents?",
    ),
)
_PROTECTED_RE = tuple((category, re.compile(rf"\b(?:{pattern})\b")) for category, pattern in _PROTECTED)


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).replace("_", " ")).lower().strip()


def protected_terms(text: str) -> list[tuple[str, str]]:
    """(category, matched word) for each protected reference in `text`, in category order."""
    normal = _normalize(text)
    found = []
    for category, pattern in _PROTECTED_RE:
        match = pattern.search(normal)
        if match:
            found.append((category, match.group(0)))
    return found


def _match_texts(match: dict) -> list[tuple[str, str]]:
    texts = []
    for name, wanted in match.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        texts.append(("matched attribute", name))
        texts.extend(("matched value", str(v)) for v in values if isinstance(v, str))
    return texts


def _protected_places(policy: Policy) -> Iterable[tuple[str, list[tuple[str, str]]]]:
    """(subject, [(where, text)]) for everything the protected-attribute check reads."""
    doc = policy.document
    for name, spec in doc.event_types.items():
        yield f"event type {_q(name)}", [("name", name), ("description", spec.description)]
        for attr, attr_spec in spec.attributes.items():
            texts = [("name", attr), ("description", attr_spec.description)]
            texts.extend(("allowed value", value) for value in attr_spec.values or ())
            yield f"attribute {_q(attr)} of event type {_q(name)}", texts
    for rule in doc.rules:
        texts = [("id", rule.id), ("description", rule.describe), *_match_texts(rule.match)]
        yield f"rule {_q(rule.id)}", texts
    for spec in doc.lists:
        texts = [
            ("id", spec.id),
            ("label", spec.label),
            ("description", spec.description),
            ("notice", spec.notice),
        ]
        for trigger in [*spec.enter, *spec.leave, *spec.extend]:
            texts.extend(_match_texts(trigger.match))
        yield f"list {_q(spec.id)}", texts
    for dimension in doc.dimensions:
        yield f"dimension {_q(dimension.id)}", [
            ("id", dimension.id),
            ("label", dimension.label),
            ("description", dimension.description),
        ]
    for measure in doc.measures:
        yield f"measure {_q(measure.id)}", [("id", measure.id), ("notice", measure.notice)]


def check_protected_attributes(policy: Policy) -> Iterable[Finding]:
    for subject, texts in _protected_places(policy):
        hits: list[tuple[str, str, str]] = []  # (category, word, where)
        for where, text in texts:
            if not text:
                continue
            for category, word in protected_terms(text):
                quoted = where in ("allowed value", "matched value")
                label = f"its {where} {_q(text)}" if quoted else f"its {where}"
                if (category, word, label) not in hits:
                    hits.append((category, word, label))
        if not hits:
            continue
        categories = list(dict.fromkeys(category for category, _, _ in hits))
        evidence = "; ".join(f'"{word}" in {label}' for _, word, label in hits)
        yield _finding(
            "protected-attribute",
            subject,
            f"{subject[0].upper()}{subject[1:]} refers to {' and '.join(categories)} ({evidence}), "
            "which a score must never use.",
        )


def check_durations(policy: Policy) -> Iterable[Finding]:
    for measure in policy.measures:
        if measure.effect not in ADVERSE_EFFECTS or measure.duration is not None:
            continue
        if measure.kind == "list":
            spec = policy.lists[measure.list_id]
            if _unbounded(spec):
                open_events = sorted({e.event for e in _open_entries(spec)})
                opens = ", ".join(open_events)
                yield _finding(
                    "no-duration",
                    f"measure {_q(measure.id)}",
                    f"Measure {_q(measure.id)} {_effect_phrase(measure)} with no duration for as long "
                    f"as the subject is on list {_q(spec.id)}, and nothing ends that listing: {opens} "
                    f"{_plural(len(open_events), 'enters', 'enter')} it with no duration and the "
                    "list has no exit event.",
                )
            continue
        forever = []
        for rule in _feeding_rules(policy, measure):
            if rule.until_list is None:
                continue
            spec = policy.lists[rule.until_list]
            if spec.leave:
                continue
            if any(e.event == rule.event and _compatible(e.match, rule.match) for e in _open_entries(spec)):
                forever.append(rule)
        if forever:
            named = ", ".join(f"{_q(r.id)} ({r.event}, while on list {_q(r.until_list)})" for r in forever)
            yield _finding(
                "no-duration",
                f"measure {_q(measure.id)}",
                f"Measure {_q(measure.id)} {_effect_phrase(measure)} with no duration, and it can be "
                f"held in place forever by {'a rule that counts' if len(forever) == 1 else 'rules that count'} "
                f"for as long as an open-ended listing with no exit lasts: {named}.",
            )
    for spec in policy.lists.values():
        opens = _open_entries(spec)
        if opens and spec.leave:
            exits = ", ".join(sorted({e.event for e in spec.leave}))
            yield _finding(
                "open-ended-listing",
                f"list {_q(spec.id)}",
                f"List {_q(spec.id)} has no time limit when entered by "
                f"{', '.join(sorted({e.event for e in opens}))}, so it ends only when the subject "
                f"acts ({exits}).",
            )


def check_aggregate_score_only(policy: Policy) -> Iterable[Finding]:
    for measure in policy.measures:
        if measure.effect not in ADVERSE_EFFECTS or measure.kind not in AGGREGATE_KINDS:
            continue
        events = trigger_events(policy, measure)
        domains = sorted({policy.event_types[e].domain for e in events})
        if not events:
            source = "that no event can move"
        elif len(events) == 1:
            source = f"that events of a single type, {events[0]} (domain {domains[0]}), can produce"
        else:
            source = (
                f"that any mix of {_count(len(events), 'event type')} "
                f"({_plural(len(domains), 'domain')}: {', '.join(domains)}) can produce"
            )
        yield _finding(
            "aggregate-score-only",
            f"measure {_q(measure.id)}",
            f"Measure {_q(measure.id)} {_effect_phrase(measure)} {_condition_phrase(policy, measure)}, "
            f"a judgment on the aggregate score alone {source}, instead of a specific list or "
            "dimension that names the conduct.",
        )


def check_disproportionate(policy: Policy) -> Iterable[Finding]:
    for measure in policy.measures:
        if measure.effect not in ADVERSE_EFFECTS or measure.kind != "list":
            continue
        reasons = [r for r in (minor_reason(policy, e) for e in policy.lists[measure.list_id].enter) if r]
        if reasons:
            yield _finding(
                "disproportionate",
                f"measure {_q(measure.id)}",
                f"Measure {_q(measure.id)} {_effect_phrase(measure)} to anyone on list "
                f"{_q(measure.list_id)}, and a minor matter puts a subject on it: "
                f"{'; '.join(dict.fromkeys(reasons))}.",
            )
    scale_range = _scale_range(policy)
    if scale_range <= 0:
        return
    low, high = _number(policy.scale.min), _number(policy.scale.max)
    for rule in policy.rules:
        moved = points_move(policy, rule)
        capped = cap_move(policy, rule)
        if moved > BIG_SHARE * scale_range:
            what = (
                f"moves the score by {_count(moved, 'point')} "
                f"({_percent(moved / scale_range)} of the {low}–{high} range)"
            )
        elif capped > BIG_SHARE * scale_range:
            what = (
                f"caps the score at {_number(rule.score_cap)}, {_count(capped, 'point')} below the "
                f"starting score ({_percent(capped / scale_range)} of the {low}–{high} range)"
            )
        else:
            continue
        yield _finding(
            "disproportionate",
            f"rule {_q(rule.id)}",
            f"Rule {_q(rule.id)} {what} for a single {rule.event} event, more than "
            f"{_percent(BIG_SHARE)} of the range at once.",
        )


def check_legal_basis(policy: Policy) -> Iterable[Finding]:
    for measure in policy.measures:
        if measure.effect in ADVERSE_EFFECTS and not measure.legal_basis.strip():
            yield _finding(
                "no-legal-basis",
                f"measure {_q(measure.id)}",
                f"Measure {_q(measure.id)} {_effect_phrase(measure)} {_condition_phrase(policy, measure)} "
                "but names no legal basis for doing so.",
            )


def check_remedy(policy: Policy) -> Iterable[Finding]:
    for measure in policy.measures:
        if not measure.remedy.strip():
            yield _finding(
                "no-remedy",
                f"measure {_q(measure.id)}",
                f"Measure {_q(measure.id)} {_effect_phrase(measure)} {_condition_phrase(policy, measure)} "
                "but does not tell the subject what they can do about it.",
            )


def check_appeal_path(policy: Policy) -> Iterable[Finding]:
    for spec in policy.lists.values():
        if not spec.leave:
            enters = ", ".join(sorted({e.event for e in spec.enter}))
            yield _finding(
                "no-appeal-path",
                f"list {_q(spec.id)}",
                f"List {_q(spec.id)} (entered by {enters}) has no exit event, so no payment, "
                "correction or successful appeal takes a subject off it early.",
            )


CHECKS: tuple[Check, ...] = (
    check_protected_attributes,
    check_cross_context,
    check_durations,
    check_aggregate_score_only,
    check_disproportionate,
    check_legal_basis,
    check_remedy,
    check_appeal_path,
)


def lint(policy: Policy, checks: Iterable[Check] = CHECKS) -> list[Finding]:
    """Every finding of every check, errors first, then warnings, then info (stable)."""
    findings = [finding for check in checks for finding in check(policy)]
    return sorted(findings, key=lambda f: _RANK[f.severity])


def summarize(findings: Iterable[Finding]) -> dict[str, int]:
    """Counts per severity: {"error": n, "warning": n, "info": n}."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        counts[finding.severity] += 1
    return counts
