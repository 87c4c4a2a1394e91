"""Tests for socialcredit.policy.lint: each check fires where it should and stays quiet elsewhere."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socialcredit.policy.lint import (
    CHECKS,
    Finding,
    check_appeal_path,
    lint,
    points_move,
    protected_terms,
    summarize,
    trigger_events,
)
from socialcredit.policy.load import load_policy, pack_names, parse_policy

HEAD = """
[policy]
id = "t"
version = "1"
title = "lint test"

[scale]
base = 1000
min = 0
max = 2000

[[dimensions]]
id = "conduct"
label = "Conduct"
"""


def policy(body: str, head: str = HEAD):
    return parse_policy(head + body, source="test.toml")


def codes(findings, code=None):
    return [(f.code, f.subject) for f in findings if code is None or f.code == code]


def only(findings, code):
    hits = [f for f in findings if f.code == code]
    assert len(hits) == 1, hits
    return hits[0]


COURT_LIST = """
[event_types."court.judgment_unfulfilled"]
domain = "court"
description = "Able to pay a court judgment but refuses"
attributes.case_id = { type = "string", required = true }

[event_types."court.judgment_paid"]
domain = "court"
description = "The judgment debt was paid"
attributes.case_id = { type = "string", required = true }

[[lists]]
id = "defaulters"
label = "Judgment defaulters"
case_attribute = "case_id"
enter = [{ event = "court.judgment_unfulfilled", duration = "P2Y" }]
leave = [{ event = "court.judgment_paid" }]
"""


def measure(ident, when, service, effect="deny", extra=""):
    return f"""
[[measures]]
id = "{ident}"
when = {when}
service = "{service}"
effect = "{effect}"
legal_basis = "Some law, art. 1"
notice = "A notice."
remedy = "Pay the debt."
{extra}
"""


# -- cross-context ---------------------------------------------------------------------------


def test_list_measure_in_another_domain_is_cross_context():
    p = policy(COURT_LIST + measure("no-flights", '{ list = "defaulters" }', "transport.air"))
    finding = only(lint(p), "cross-context")
    assert finding.severity == "warning"
    assert finding.subject == "measure 'no-flights'"
    assert finding.reference == "EU AI Act Art. 5(1)(c)(i)"
    assert finding.message == (
        "Measure 'no-flights' denies 'transport.air', but the event that puts a subject on list "
        "'defaulters' comes from a domain that is not a segment of the service transport.air "
        "(path segments transport, air): court (court.judgment_unfulfilled)."
    )
    # only enter triggers count: the leave event is not named
    assert "court.judgment_paid" not in finding.message


def test_list_measure_in_its_own_domain_is_not_cross_context():
    p = policy(COURT_LIST + measure("no-court-fee-waiver", '{ list = "defaulters" }', "court.fee_waiver"))
    assert codes(lint(p), "cross-context") == []


RAIL_BAN = """
[event_types."rail.fare_evasion"]
domain = "rail"
description = "Fare evasion on a train"

[event_types."court.judgment_unfulfilled"]
domain = "court"
description = "Able to pay a court judgment but refuses"

[[lists]]
id = "rail-ban"
label = "Railway ticket ban"
enter = [{ event = "rail.fare_evasion", duration = "P180D" }]

[[lists]]
id = "defaulters"
label = "Judgment defaulters"
enter = [{ event = "court.judgment_unfulfilled", duration = "P2Y" }]
"""


@pytest.mark.parametrize(
    ("listing", "service", "reported"),
    [
        # the event's domain is a segment of the service path, wherever it stands
        ("rail-ban", "rail.tickets", False),  # first segment
        ("rail-ban", "transport.rail", False),  # second segment: the railway's own ban
        ("rail-ban", "transport.rail.high_speed", False),  # a middle segment
        ("rail-ban", "booking.online.rail", False),  # last segment
        # whole segments only, compared literally
        ("rail-ban", "transport.railway", True),
        ("rail-ban", "transport.air", True),
        ("defaulters", "transport.air", True),  # a court listing that grounds flights
        ("defaulters", "transport.rail", True),
        ("defaulters", "legal.court.fees", False),
    ],
)
def test_a_measure_is_in_context_when_a_trigger_domain_is_any_segment_of_its_service(listing, service, reported):
    p = policy(RAIL_BAN + measure("m", f'{{ list = "{listing}" }}', service))
    assert codes(lint(p), "cross-context") == ([("cross-context", "measure 'm'")] if reported else [])


def test_the_cross_context_message_names_the_segments_it_compared():
    p = policy(RAIL_BAN + measure("no-flights", '{ list = "rail-ban" }', "transport.air"))
    assert only(lint(p), "cross-context").message == (
        "Measure 'no-flights' denies 'transport.air', but the event that puts a subject on list "
        "'rail-ban' comes from a domain that is not a segment of the service transport.air "
        "(path segments transport, air): rail (rail.fare_evasion)."
    )
    single = policy(RAIL_BAN + measure("no-venues", '{ list = "defaulters" }', "venues"))
    assert only(lint(single), "cross-context").message == (
        "Measure 'no-venues' denies 'venues', but the event that puts a subject on list 'defaulters' "
        "comes from a domain that is not a segment of the service venues (path segment venues): "
        "court (court.judgment_unfulfilled)."
    )


SCORED = """
[event_types."utility.late_payment"]
domain = "utility"
description = "A utility bill paid late"

[event_types."finance.bank_arrears"]
domain = "finance"
description = "A loan repayment overdue"

[event_types."traffic.drunk_driving"]
domain = "traffic"
description = "Driving under the influence of alcohol"

[[rules]]
id = "utility-late"
event = "utility.late_payment"
describe = "a utility bill paid late"
dimension = "conduct"
points = -20
lifetime = "P1Y"

[[rules]]
id = "bank-arrears"
event = "finance.bank_arrears"
describe = "a loan repayment overdue"
dimension = "conduct"
points = -10
lifetime = "P2Y"

[[rules]]
id = "drunk-driving"
event = "traffic.drunk_driving"
describe = "drunk driving"
score_cap = 849
lifetime = "P2Y"

[[tiers]]
id = "A"
min = 960

[[tiers]]
id = "C"
"""


def test_tier_measure_is_triggered_by_every_scored_event_including_caps():
    p = policy(SCORED + measure("heating", '{ tier = ["A"] }', "utility.heating", "discount"))
    assert trigger_events(p, p.measures[0]) == [
        "finance.bank_arrears",
        "traffic.drunk_driving",
        "utility.late_payment",
    ]
    assert codes(lint(p), "cross-context") == []


def test_tier_measure_in_a_domain_no_event_has_is_cross_context():
    p = policy(SCORED + measure("bikes", '{ tier = ["A"] }', "transport.bike_share", "deposit_free"))
    finding = only(lint(p), "cross-context")
    assert finding.message == (
        "Measure 'bikes' waives the deposit for 'transport.bike_share', but the events that move the "
        "score it depends on all come from domains that are not segments of the service "
        "transport.bike_share (path segments transport, bike_share): finance (finance.bank_arrears); "
        "traffic (traffic.drunk_driving); utility (utility.late_payment)."
    )
    # a segment further down the path matches too: the same tier perk on a traffic service
    inside = policy(SCORED + measure("bikes", '{ tier = ["A"] }', "city.traffic.bike_share", "deposit_free"))
    assert codes(lint(inside), "cross-context") == []


def test_dimension_measure_is_triggered_only_by_its_dimension():
    head = HEAD + """
[[dimensions]]
id = "driving"
label = "Driving"
"""
    body = SCORED.replace(
        'id = "utility-late"\nevent = "utility.late_payment"\ndescribe = "a utility bill paid late"\n'
        'dimension = "conduct"',
        'id = "utility-late"\nevent = "utility.late_payment"\ndescribe = "a utility bill paid late"\n'
        'dimension = "driving"',
    )
    p = policy(body + measure("m", '{ dimension = "driving", below = -10 }', "finance.loan"), head=head)
    assert trigger_events(p, p.measures[0]) == ["utility.late_payment"]
    finding = only(lint(p), "cross-context")
    assert finding.message == (
        "Measure 'm' denies 'finance.loan', but the event that moves the 'driving' dimension it "
        "depends on comes from a domain that is not a segment of the service finance.loan "
        "(path segments finance, loan): utility (utility.late_payment)."
    )
    q = policy(body + measure("m", '{ dimension = "driving", below = -10 }', "utility.water"), head=head)
    assert codes(lint(q), "cross-context") == []


def test_rules_in_a_zero_weight_dimension_do_not_trigger_score_measures():
    head = HEAD + """
[[dimensions]]
id = "shadow"
label = "Shadow"
weight = 0
"""
    body = """
[event_types."transport.fare_evasion"]
domain = "transport"
description = "Fare evasion"

[event_types."finance.bank_arrears"]
domain = "finance"
description = "A loan repayment overdue"

[[rules]]
id = "fare"
event = "transport.fare_evasion"
describe = "fare evasion"
dimension = "shadow"
points = -10
lifetime = "P1Y"

[[rules]]
id = "arrears"
event = "finance.bank_arrears"
describe = "arrears"
dimension = "conduct"
points = -10
lifetime = "P1Y"
"""
    p = policy(body + measure("m", "{ score_below = 900 }", "transport.metro"), head=head)
    assert trigger_events(p, p.measures[0]) == ["finance.bank_arrears"]
    assert codes(lint(p), "cross-context") == [("cross-context", "measure 'm'")]


def test_a_measure_nothing_can_trigger_is_not_cross_context():
    body = """
[event_types."finance.bank_arrears"]
domain = "finance"
description = "A loan repayment overdue"
"""
    p = policy(body + measure("m", "{ score_at_least = 900 }", "transport.bike_share", "discount"))
    assert trigger_events(p, p.measures[0]) == []
    assert lint(p) == []


# -- protected attributes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("civic.protest", [("assembly, protest or petitioning", "protest")]),
        ("abnormal_petitioning", [("assembly, protest or petitioning", "petitioning")]),
        ("Took part in an unlawful assembly", [("assembly, protest or petitioning", "assembly")]),
        ("religion", [("religion", "religion")]),
        ("Muslim", [("religion", "muslim")]),
        ("ethnicity", [("ethnicity or race", "ethnicity")]),
        ("trade_union_member", [("trade-union membership", "trade union")]),
        ("health_status", [("health", "health")]),
        ("health.checkup", [("health", "health")]),
        ("Treated for a chronic illness", [("health", "illness")]),
        ("sexual_orientation", [("sexual orientation", "sexual orientation")]),
        ("posting online comments critical of officials", [("speech or expression", "posting")]),
        ("online_comment", [("speech or expression", "online comment")]),
        ("Spreading rumours on social media", [("speech or expression", "rumours")]),
        ("political_loyalty", [("political opinion", "political")]),
        (
            "Political speech at a protest",
            [
                ("political opinion", "political"),
                ("speech or expression", "speech"),
                ("assembly, protest or petitioning", "protest"),
            ],
        ),
    ],
)
def test_protected_terms_are_found(text, expected):
    assert protected_terms(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "healthcare",  # a sector, not a person's health (and "health" is not a word in it)
        "A high-premium health insurance product",
        "public health inspection",
        "hospital",
        "Failing to act in good faith",
        "names posted for 7 days to object",
        "public posting of names",
        "a social credit demonstration city",
        "European Union procurement",
        "UnionPay card",
        "unionpay",
        "assembly line worker",
        "Pyramid selling or fraud",
        "Driving under the influence of alcohol",
        "A blood donation",
        "traffic.violation",
        "contract breach",
        "comment",  # a review's text is the rater's speech, not the subject's
        "regular expression",
        "a Protestant church",  # religion, not protest
        "dating",  # a review category (where people met), not sexual orientation or sex life
        "a dating review",
    ],
)
def test_innocent_words_are_not_protected(text):
    if text == "a Protestant church":
        assert protected_terms(text) == [("religion", "protestant")]
    else:
        assert protected_terms(text) == []


PROTECTED_POLICY = """
[event_types."civic.protest"]
domain = "civic"
description = "Took part in a street demonstration"

[event_types."census.record"]
domain = "census"
description = "A census record"
attributes.religion = { type = "string" }
attributes.group = { type = "string", values = ["han", "uyghur", "other"] }

[event_types."finance.bank_arrears"]
domain = "finance"
description = "A loan repayment overdue"

[[dimensions]]
id = "loyalty"
label = "Political loyalty"

[[rules]]
id = "arrears"
event = "finance.bank_arrears"
describe = "arrears, and posting online comments about it"
dimension = "conduct"
points = -10
lifetime = "P1Y"

[[lists]]
id = "watch"
label = "Watch list"
description = "People with a record of illness"
enter = [{ event = "finance.bank_arrears", duration = "P1Y" }]
leave = [{ event = "finance.bank_arrears" }]

[[measures]]
id = "hospital-deposit"
when = { list = "watch" }
service = "health.hospital"
effect = "deposit_required"
legal_basis = "Some law"
notice = "You must pay a deposit; this does not cover health insurance."
remedy = "Pay."

[[measures]]
id = "no-loans"
when = { list = "watch" }
service = "finance.loan"
effect = "deny"
legal_basis = "Some law"
notice = "Because of your health record you may not borrow."
remedy = "Pay."
"""


def test_protected_attribute_findings_name_the_place_and_the_word():
    findings = [f for f in lint(policy(PROTECTED_POLICY)) if f.code == "protected-attribute"]
    assert all(f.severity == "error" for f in findings)
    assert all(f.reference.startswith("GDPR Art. 9; EU AI Act Art. 5(1)(c)") for f in findings)
    messages = {f.subject: f.message for f in findings}
    assert sorted(messages) == [
        "attribute 'group' of event type 'census.record'",
        "attribute 'religion' of event type 'census.record'",
        "dimension 'loyalty'",
        "event type 'civic.protest'",
        "list 'watch'",
        "measure 'no-loans'",
        "rule 'arrears'",
    ]
    assert messages["event type 'civic.protest'"] == (
        "Event type 'civic.protest' refers to assembly, protest or petitioning "
        '("protest" in its name; "demonstration" in its description), which a score must never use.'
    )
    assert '"religion" in its name' in messages["attribute 'religion' of event type 'census.record'"]
    assert "ethnicity or race" in messages["attribute 'group' of event type 'census.record'"]
    assert "\"uyghur\" in its allowed value 'uyghur'" in messages["attribute 'group' of event type 'census.record'"]
    assert '"political" in its label' in messages["dimension 'loyalty'"]
    assert "speech or expression" in messages["rule 'arrears'"]
    assert '"posting" in its description' in messages["rule 'arrears'"]
    assert '"illness" in its description' in messages["list 'watch'"]
    assert '"health" in its notice' in messages["measure 'no-loans'"]
    # the hospital service and "health insurance" in a notice are not protected references
    assert "measure 'hospital-deposit'" not in messages
    # errors come before everything else
    assert [f.severity for f in lint(policy(PROTECTED_POLICY))][: len(findings)] == ["error"] * len(findings)


def test_protected_words_in_match_values_are_found():
    body = """
[event_types."census.record"]
domain = "census"
description = "A census record"
attributes.faith = { type = "string" }

[[rules]]
id = "census-flag"
event = "census.record"
describe = "a census record of a particular kind"
dimension = "conduct"
points = -10
lifetime = "P1Y"
match = { faith = "Catholic" }
"""
    findings = {f.subject: f for f in lint(policy(body)) if f.code == "protected-attribute"}
    assert sorted(findings) == ["attribute 'faith' of event type 'census.record'", "rule 'census-flag'"]
    assert findings["rule 'census-flag'"].message == (
        "Rule 'census-flag' refers to religion (\"faith\" in its matched attribute; "
        "\"catholic\" in its matched value 'Catholic'), which a score must never use."
    )


# -- durations -------------------------------------------------------------------------------


OPEN_LIST = """
[event_types."court.judgment_unfulfilled"]
domain = "court"
description = "Able to pay a court judgment but refuses"

[[lists]]
id = "defaulters"
label = "Judgment defaulters"
enter = [{ event = "court.judgment_unfulfilled" }]
"""


def test_measure_on_a_listing_nothing_ends_has_no_duration():
    p = policy(OPEN_LIST + measure("no-flights", '{ list = "defaulters" }', "transport.air"))
    finding = only(lint(p), "no-duration")
    assert finding.severity == "warning"
    assert finding.reference == "EU AI Act Art. 5(1)(c)(ii) (proportionality); FCRA 7-year rule"
    assert finding.message == (
        "Measure 'no-flights' denies 'transport.air' with no duration for as long as the subject is "
        "on list 'defaulters', and nothing ends that listing: court.judgment_unfulfilled enters it "
        "with no duration and the list has no exit event."
    )
    assert codes(lint(p), "no-appeal-path") == [("no-appeal-path", "list 'defaulters'")]


def test_a_listing_several_open_events_enter_is_phrased_in_the_plural():
    body = OPEN_LIST.replace(
        'enter = [{ event = "court.judgment_unfulfilled" }]',
        'enter = [{ event = "court.judgment_unfulfilled" }, { event = "court.contempt" }]',
    ) + """
[event_types."court.contempt"]
domain = "court"
description = "Contempt of court"
"""
    p = policy(body + measure("no-flights", '{ list = "defaulters" }', "transport.air"))
    assert only(lint(p), "no-duration").message == (
        "Measure 'no-flights' denies 'transport.air' with no duration for as long as the subject is "
        "on list 'defaulters', and nothing ends that listing: court.contempt, court.judgment_unfulfilled "
        "enter it with no duration and the list has no exit event."
    )


def test_a_measure_duration_or_a_listing_term_bounds_it():
    with_duration = measure("no-flights", '{ list = "defaulters" }', "transport.air", extra='duration = "P5Y"')
    assert codes(lint(policy(OPEN_LIST + with_duration)), "no-duration") == []
    termed = OPEN_LIST.replace(
        '{ event = "court.judgment_unfulfilled" }',
        '{ event = "court.judgment_unfulfilled", duration = "P2Y" }',
    )
    findings = lint(policy(termed + measure("no-flights", '{ list = "defaulters" }', "transport.air")))
    assert codes(findings, "no-duration") == []
    assert codes(findings, "open-ended-listing") == []


def test_perks_on_an_open_listing_are_not_no_duration():
    p = policy(OPEN_LIST + measure("m", '{ list = "defaulters" }', "court.fast_lane", "fast_track"))
    assert codes(lint(p), "no-duration") == []


def test_open_listing_with_an_exit_ends_only_when_the_subject_acts():
    body = OPEN_LIST + """
[event_types."court.judgment_paid"]
domain = "court"
description = "The judgment debt was paid"
"""
    body = body.replace(
        'enter = [{ event = "court.judgment_unfulfilled" }]',
        'enter = [{ event = "court.judgment_unfulfilled" }]\nleave = [{ event = "court.judgment_paid" }]',
    )
    findings = lint(policy(body + measure("no-flights", '{ list = "defaulters" }', "transport.air")))
    assert codes(findings, "no-duration") == []
    assert codes(findings, "no-appeal-path") == []
    finding = only(findings, "open-ended-listing")
    assert finding.severity == "info"
    assert finding.message == (
        "List 'defaulters' has no time limit when entered by court.judgment_unfulfilled, so it ends "
        "only when the subject acts (court.judgment_paid)."
    )


COUNTS_UNTIL = OPEN_LIST + """
[[rules]]
id = "defaulter-points"
event = "court.judgment_unfulfilled"
describe = "listed as a judgment defaulter"
dimension = "conduct"
points = -300
counts_until = { list = "defaulters", after = "P5Y" }
"""


def test_score_measure_fed_by_a_rule_that_counts_forever_has_no_duration():
    p = policy(COUNTS_UNTIL + measure("no-loans", "{ score_below = 800 }", "finance.loan"))
    finding = only(lint(p), "no-duration")
    assert finding.subject == "measure 'no-loans'"
    assert finding.message == (
        "Measure 'no-loans' denies 'finance.loan' with no duration, and it can be held in place "
        "forever by a rule that counts for as long as an open-ended listing with no exit lasts: "
        "'defaulter-points' (court.judgment_unfulfilled, while on list 'defaulters')."
    )


def test_score_measure_fed_by_rules_with_lifetimes_is_bounded():
    p = policy(SCORED + measure("no-loans", "{ score_below = 900 }", "finance.loan"))
    assert codes(lint(p), "no-duration") == []


# -- aggregate score only --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "phrase"),
    [
        ('{ tier = ["C"] }', "to grade C"),
        ('{ tier = ["C", "A"] }', "to grades A, C"),
        ("{ score_below = 900 }", "to scores below 900"),
        ("{ score_at_least = 1100 }", "to scores of 1,100 or more"),
    ],
)
def test_adverse_measure_on_the_aggregate_score_is_reported(when, phrase):
    p = policy(SCORED + measure("bikes", when, "finance.loan", "deposit_required"))
    finding = only(lint(p), "aggregate-score-only")
    assert finding.reference == "EU AI Act Art. 5(1)(c); GDPR Art. 22"
    assert finding.message == (
        f"Measure 'bikes' requires a deposit for 'finance.loan' {phrase}, a judgment on the aggregate "
        "score alone that any mix of 3 event types (domains: finance, traffic, utility) can produce, "
        "instead of a specific list or dimension that names the conduct."
    )


def test_an_aggregate_measure_fed_by_one_event_type_says_so_in_the_singular():
    body = """
[event_types."finance.bank_arrears"]
domain = "finance"
description = "A loan repayment overdue"

[[rules]]
id = "arrears"
event = "finance.bank_arrears"
describe = "a loan repayment overdue"
dimension = "conduct"
points = -1
lifetime = "P1Y"
"""
    p = policy(body + measure("m", "{ score_below = 900 }", "finance.loan"))
    assert only(lint(p), "aggregate-score-only").message == (
        "Measure 'm' denies 'finance.loan' to scores below 900, a judgment on the aggregate score "
        "alone that events of a single type, finance.bank_arrears (domain finance), can produce, "
        "instead of a specific list or dimension that names the conduct."
    )
    nothing = policy(body.split("[[rules]]")[0] + measure("m", "{ score_below = 900 }", "finance.loan"))
    assert only(lint(nothing), "aggregate-score-only").message == (
        "Measure 'm' denies 'finance.loan' to scores below 900, a judgment on the aggregate score "
        "alone that no event can move, instead of a specific list or dimension that names the conduct."
    )


def test_perks_lists_and_dimensions_are_not_aggregate_score_only():
    perk = measure("perk", '{ tier = ["A"] }', "utility.heating", "discount")
    dim = measure("dim", '{ dimension = "conduct", below = -50 }', "finance.loan")
    assert codes(lint(policy(SCORED + perk + dim)), "aggregate-score-only") == []
    listed = measure("listed", '{ list = "defaulters" }', "court.x")
    assert codes(lint(policy(COURT_LIST + listed)), "aggregate-score-only") == []


# -- disproportionate ------------------------------------------------------------------------


TICKETS = """
[event_types."traffic.violation"]
domain = "traffic"
description = "A traffic ticket"

[[rules]]
id = "ticket"
event = "traffic.violation"
describe = "a traffic ticket"
dimension = "conduct"
points = {points}
lifetime = "P1Y"

[[lists]]
id = "bad-drivers"
label = "Bad drivers"
enter = [{{ event = "traffic.violation", duration = "P1Y" }}]
"""


def test_adverse_measure_on_a_list_a_minor_deduction_enters_is_disproportionate():
    p = policy(TICKETS.format(points=-5) + measure("no-cars", '{ list = "bad-drivers" }', "traffic.car_purchase"))
    finding = only(lint(p), "disproportionate")
    assert finding.subject == "measure 'no-cars'"
    assert finding.reference == "EU AI Act Art. 5(1)(c)(ii)"
    assert finding.message == (
        "Measure 'no-cars' denies 'traffic.car_purchase' to anyone on list 'bad-drivers', and a minor "
        "matter puts a subject on it: traffic.violation, which rule 'ticket' deducts only 5 points "
        "(0.25% of the score range)."
    )


def test_a_one_point_deduction_is_one_point():
    p = policy(TICKETS.format(points=-1) + measure("m", '{ list = "bad-drivers" }', "traffic.x"))
    assert only(lint(p), "disproportionate").message.endswith(
        "traffic.violation, which rule 'ticket' deducts only 1 point (0.05% of the score range)."
    )


def test_the_minor_threshold_is_half_a_percent_of_the_range():
    at_limit = policy(TICKETS.format(points=-10) + measure("m", '{ list = "bad-drivers" }', "traffic.x"))
    assert codes(lint(at_limit), "disproportionate") == [("disproportionate", "measure 'm'")]
    above = policy(TICKETS.format(points=-11) + measure("m", '{ list = "bad-drivers" }', "traffic.x"))
    assert codes(lint(above), "disproportionate") == []
    perk = policy(TICKETS.format(points=-5) + measure("m", '{ list = "bad-drivers" }', "traffic.x", "discount"))
    assert codes(lint(perk), "disproportionate") == []


SEVERITY = """
[event_types."admin.penalty"]
domain = "admin"
description = "An administrative penalty"
attributes.severity = {{ type = "string", values = ["minor", "general", "serious"], required = true }}

[[lists]]
id = "penalized"
label = "Penalized"
enter = [{{ event = "admin.penalty", duration = "P1Y"{match} }}]
"""


def test_a_list_entered_by_the_minor_severity_is_disproportionate():
    p = policy(SEVERITY.format(match="") + measure("m", '{ list = "penalized" }', "admin.licence"))
    finding = only(lint(p), "disproportionate")
    assert finding.message.endswith(
        "a minor matter puts a subject on it: admin.penalty even when its severity is 'minor'."
    )
    ban = measure("m", '{ list = "penalized" }', "admin.licence")
    minor = policy(SEVERITY.format(match=', match = { severity = "minor" }') + ban)
    assert "admin.penalty even when its severity is 'minor'" in only(lint(minor), "disproportionate").message
    serious = policy(SEVERITY.format(match=', match = { severity = ["general", "serious"] }') + ban)
    assert codes(lint(serious), "disproportionate") == []


def test_a_minor_rule_with_an_incompatible_match_does_not_make_the_trigger_minor():
    body = """
[event_types."commerce.dishonesty"]
domain = "commerce"
description = "Dishonest commercial conduct"
attributes.level = { type = "string", values = ["low", "high"], required = true }

[[rules]]
id = "dishonesty-low"
event = "commerce.dishonesty"
match = { level = "low" }
describe = "low-level dishonesty"
dimension = "conduct"
points = -5
lifetime = "P1Y"

[[rules]]
id = "dishonesty-high"
event = "commerce.dishonesty"
match = { level = "high" }
describe = "high-level dishonesty"
dimension = "conduct"
points = -50
lifetime = "P3Y"

[[lists]]
id = "dishonest"
label = "Dishonest traders"
enter = [{ event = "commerce.dishonesty", match = { level = "high" }, duration = "P1Y" }]
"""
    p = policy(body + measure("m", '{ list = "dishonest" }', "commerce.licence"))
    assert codes(lint(p), "disproportionate") == []
    loose_body = body.replace(', match = { level = "high" }, duration', ", duration")
    loose = policy(loose_body + measure("m", '{ list = "dishonest" }', "commerce.licence"))
    assert "rule 'dishonesty-low' deducts only 5 points" in only(lint(loose), "disproportionate").message


def test_a_single_event_moving_more_than_a_quarter_of_the_range_is_disproportionate():
    big = policy(TICKETS.format(points=-600))
    finding = only(lint(big), "disproportionate")
    assert finding.subject == "rule 'ticket'"
    assert finding.message == (
        "Rule 'ticket' moves the score by 600 points (30% of the 0–2,000 range) for a single "
        "traffic.violation event, more than 25% of the range at once."
    )
    assert codes(lint(policy(TICKETS.format(points=-500))), "disproportionate") == []


def test_a_score_cap_far_below_the_start_is_disproportionate():
    body = """
[event_types."traffic.drunk_driving"]
domain = "traffic"
description = "Drunk driving"

[[rules]]
id = "drunk"
event = "traffic.drunk_driving"
describe = "drunk driving"
score_cap = {cap}
lifetime = "P2Y"
"""
    finding = only(lint(policy(body.format(cap=100))), "disproportionate")
    assert finding.message == (
        "Rule 'drunk' caps the score at 100, 900 points below the starting score (45% of the 0–2,000 "
        "range) for a single traffic.drunk_driving event, more than 25% of the range at once."
    )
    assert codes(lint(policy(body.format(cap=849))), "disproportionate") == []


def test_score_moves_on_a_weighted_scale_use_the_dimension_share():
    head = """
[policy]
id = "w"
version = "1"
title = "weighted"

[scale]
base = 350
min = 350
max = 950
combine = "weighted"

[[dimensions]]
id = "history"
label = "Credit history"
weight = 3
min = 0
max = 100

[[dimensions]]
id = "social"
label = "Relationships"
weight = 1
min = 0
max = 100
"""
    body = """
[event_types."finance.default"]
domain = "finance"
description = "A loan default"

[[rules]]
id = "default"
event = "finance.default"
describe = "a loan default"
dimension = "history"
points = -40
lifetime = "P5Y"
"""
    p = policy(body, head=head)
    # 600-point range × 3/4 weight share × 40/100 of the dimension = 180 points = 30%
    assert points_move(p, p.rules[0]) == pytest.approx(180.0)
    assert "moves the score by 180 points (30% of the 350–950 range)" in only(lint(p), "disproportionate").message


# -- legal basis, remedy, appeal -------------------------------------------------------------


def test_adverse_measure_without_legal_basis():
    bare = """
[[measures]]
id = "no-flights"
when = { list = "defaulters" }
service = "court.flights"
effect = "deny"
notice = "You may not fly."
"""
    findings = lint(policy(COURT_LIST + bare))
    finding = only(findings, "no-legal-basis")
    assert finding.severity == "warning"
    assert finding.message == (
        "Measure 'no-flights' denies 'court.flights' to anyone on list 'defaulters' but names no "
        "legal basis for doing so."
    )
    remedy = only(findings, "no-remedy")
    assert remedy.severity == "info"
    assert "Measure 'no-flights' denies 'court.flights'" in remedy.message
    perk = bare.replace('effect = "deny"', 'effect = "discount"')
    perk_findings = lint(policy(COURT_LIST + perk))
    assert codes(perk_findings, "no-legal-basis") == []
    assert codes(perk_findings, "no-remedy") == [("no-remedy", "measure 'no-flights'")]
    assert codes(lint(policy(COURT_LIST + measure("m", '{ list = "defaulters" }', "court.x"))), "no-legal-basis") == []


def test_list_without_any_exit_has_no_appeal_path():
    body = """
[event_types."rail.smoking"]
domain = "rail"
description = "Smoking on a train"

[[lists]]
id = "rail-ban"
label = "Railway ticket ban"
enter = [{ event = "rail.smoking", duration = "P180D" }]
"""
    finding = only(list(check_appeal_path(policy(body))), "no-appeal-path")
    assert finding.to_dict() == {
        "code": "no-appeal-path",
        "severity": "info",
        "subject": "list 'rail-ban'",
        "message": (
            "List 'rail-ban' (entered by rail.smoking) has no exit event, so no payment, correction "
            "or successful appeal takes a subject off it early."
        ),
        "reference": "GDPR Art. 16 and 22(3); FCRA dispute and reinvestigation (30 days)",
    }
    assert codes(lint(policy(COURT_LIST)), "no-appeal-path") == []


# -- ordering, summary, registry -------------------------------------------------------------


def test_findings_are_sorted_errors_warnings_info_and_summarized():
    p = policy(PROTECTED_POLICY + OPEN_LIST.replace('id = "defaulters"', 'id = "open"') + """
[[measures]]
id = "no-flights"
when = { list = "open" }
service = "transport.air"
effect = "deny"
notice = "You may not fly."
""")
    findings = lint(p)
    severities = [f.severity for f in findings]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)
    summary = summarize(findings)
    assert summary == {
        "error": severities.count("error"),
        "warning": severities.count("warning"),
        "info": severities.count("info"),
    }
    assert summary == {"error": 7, "warning": 6, "info": 2}  # no-remedy, no-appeal-path
    assert {f.code for f in findings if f.severity == "warning"} == {
        "cross-context",
        "disproportionate",  # list 'watch' is entered by arrears worth only 10 points
        "no-duration",
        "no-legal-basis",
    }
    assert codes(findings, "cross-context") == [
        ("cross-context", "measure 'hospital-deposit'"),
        ("cross-context", "measure 'no-flights'"),
    ]
    assert summarize([]) == {"error": 0, "warning": 0, "info": 0}


def test_findings_are_frozen_and_checks_are_pluggable():
    finding = Finding("x-y", "info", "list 'a'", "A message.", "A reference")
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.code = "other"  # type: ignore[misc]

    def always(policy):
        yield finding

    p = policy(COURT_LIST)
    assert lint(p, checks=(always,)) == [finding]
    assert lint(p, checks=(*CHECKS, always)) == [*lint(p), finding]


@given(st.lists(st.sampled_from(["error", "warning", "info"]), max_size=20))
def test_sorting_is_stable_within_a_severity(severities):
    findings = [Finding("c", s, f"thing {i}", "m.", "r") for i, s in enumerate(severities)]

    def replay(policy):
        return findings

    result = lint(policy(COURT_LIST), checks=(replay,))
    for severity in ("error", "warning", "info"):
        same = [f.subject for f in result if f.severity == severity]
        assert same == [f.subject for f in findings if f.severity == severity]
    assert [f.severity for f in result] == sorted(severities, key=["error", "warning", "info"].index)


# -- the shipped packs -----------------------------------------------------------------------


def test_rongcheng_findings_name_its_cross_context_and_score_only_measures():
    findings = lint(load_policy("rongcheng"))
    assert codes(findings) == [
        ("cross-context", "measure 'bike-share-deposit-free'"),
        ("cross-context", "measure 'key-supervision'"),
        ("cross-context", "measure 'grade-d-no-public-posts'"),
        ("aggregate-score-only", "measure 'key-supervision'"),
        ("aggregate-score-only", "measure 'low-grade-no-loans'"),
        ("aggregate-score-only", "measure 'grade-d-no-public-posts'"),
    ]
    finding = findings[0]
    assert "the service transport.bike_share (path segments transport, bike_share)" in finding.message
    for domain in ("civic", "commerce", "court", "finance", "traffic", "utility"):
        assert f"{domain} (" in finding.message
    # Loans are refused for conduct that includes financial events: same context, not flagged.
    assert ("cross-context", "measure 'low-grade-no-loans'") not in codes(findings)
    messages = {f.subject: f.message for f in findings if f.code == "aggregate-score-only"}
    assert "'employment.civil_service' to grade D, a judgment" in messages["measure 'grade-d-no-public-posts'"]
    assert "'finance.loan' to grades C, D, a judgment" in messages["measure 'low-grade-no-loans'"]
    assert "any mix of 19 event types (domains: civic, commerce, court, finance, traffic, utility)" in (
        messages["measure 'low-grade-no-loans'"]
    )
    assert summarize(findings) == {"error": 0, "warning": 6, "info": 0}


def test_rongcheng_heating_perk_is_triggered_by_many_domains_including_utility():
    p = load_policy("rongcheng")
    heating = next(m for m in p.measures if m.id == "heating-discount")
    domains = {p.event_types[e].domain for e in trigger_events(p, heating)}
    assert domains == {"civic", "commerce", "court", "finance", "traffic", "utility"}
    assert "traffic.drunk_driving" in trigger_events(p, heating)  # a score cap feeds the tier too


PACK_SUMMARIES = {
    "china-judgment-defaulters": {"error": 0, "warning": 27, "info": 1},
    "nosedive": {"error": 0, "warning": 9, "info": 1},
    "peeple": {"error": 0, "warning": 0, "info": 1},
    "rongcheng": {"error": 0, "warning": 6, "info": 0},
    "sesame": {"error": 0, "warning": 8, "info": 1},
}


def test_the_pack_list_is_the_one_these_tests_know():
    assert sorted(pack_names()) == sorted(PACK_SUMMARIES)


@pytest.mark.parametrize("name", sorted(PACK_SUMMARIES))
def test_every_shipped_pack_lints_cleanly_formed_findings(name):
    findings = lint(load_policy(name))
    assert summarize(findings) == PACK_SUMMARIES[name]
    for finding in findings:
        assert finding.severity in ("error", "warning", "info")
        assert finding.code.replace("-", "").isalpha() and finding.code == finding.code.lower()
        assert finding.message.endswith(".") and finding.reference
        # no number-word slips: "1 event types", "to grades D", "1 points"
        assert " 1 event types" not in finding.message and " 1 points" not in finding.message
    assert [f for f in findings if f.code == "protected-attribute"] == []


def test_china_flight_ban_is_cross_context_and_the_railway_ban_is_in_context():
    p = load_policy("china-judgment-defaulters")
    findings = lint(p)
    reported = {f.subject: f.message for f in findings if f.code == "cross-context"}
    assert reported["measure 'jd-no-flights'"] == (
        "Measure 'jd-no-flights' denies 'transport.air', but the event that puts a subject on list "
        "'judgment-defaulters' comes from a domain that is not a segment of the service transport.air "
        "(path segments transport, air): court (court.judgment_unfulfilled)."
    )
    # every court-listing measure is cross-context: no service path contains `court`
    court_measures = sorted(m.id for m in p.measures if m.kind == "list" and m.list_id == "judgment-defaulters")
    assert len(court_measures) == 23
    assert all(f"measure '{m}'" in reported for m in court_measures)
    # court bans on rail services stay cross-context: `court` is none of transport, rail, high_speed
    assert "(path segments transport, rail, high_speed): court (court.judgment_unfulfilled)" in (
        reported["measure 'jd-no-high-speed-rail'"]
    )
    # the railway's own ban: rail.serious_misconduct events (domain rail) → transport.rail
    railway = p.measures_by_id["rail-ticket-ban"]
    assert railway.service == "transport.rail"
    assert trigger_events(p, railway) == ["rail.serious_misconduct"]
    assert "measure 'rail-ticket-ban'" not in reported
    # the tax red list's own privilege is in context; its public fast tracks are not
    assert "measure 'red-no-routine-tax-inspection'" not in reported
    assert sorted(reported) == sorted(
        [f"measure '{m}'" for m in court_measures]
        + ["measure 'red-green-channel'", "measure 'red-simplified-procedures'", "measure 'penalty-procurement-check'"]
    )
    assert codes(findings, "protected-attribute") == []
    assert codes(findings, "aggregate-score-only") == []
    assert codes(findings, "disproportionate") == [("disproportionate", "measure 'penalty-procurement-check'")]
    assert codes(findings, "open-ended-listing") == [("open-ended-listing", "list 'judgment-defaulters'")]
    assert summarize(findings) == {"error": 0, "warning": 27, "info": 1}


def test_sesame_score_perks_are_not_aggregate_sanctions_but_court_bans_are_cross_context():
    p = load_policy("sesame")
    findings = lint(p)
    assert codes(findings, "aggregate-score-only") == []
    perks = [m for m in p.measures if m.kind in ("tier", "score_below", "score_at_least")]
    assert perks and all(m.effect not in ("deny", "deposit_required", "extra_inspection") for m in perks)
    reported = {f.subject: f.message for f in findings if f.code == "cross-context"}
    bans = [m for m in p.measures if m.kind == "list" and m.effect == "deny"]
    assert sorted(m.id for m in bans) == [
        "defaulter-no-car-rental",
        "defaulter-no-holidays",
        "defaulter-no-luxury",
        "defaulter-no-star-hotels",
    ]
    for m in bans:
        domains = {p.event_types[e].domain for e in trigger_events(p, m)}
        assert domains == {"court"}
        assert (f"measure '{m.id}'" in reported) == (not domains & set(m.service.split(".")))
    assert all(f"measure '{m.id}'" in reported for m in bans)
    assert codes(findings, "protected-attribute") == []
    assert summarize(findings) == {"error": 0, "warning": 8, "info": 1}


NOSEDIVE_DENIALS = {
    "no-standby-below-4-2": ("transport.air.standby", "4.2"),
    "no-entry-below-3-8": ("venue.entry", "3.8"),
    "no-office-below-2-5": ("employment.office_access", "2.5"),
    "old-cars-below-3": ("rental.car.current_model", "3"),
}


def test_nosedive_score_thresholds_are_aggregate_score_only_and_cross_context():
    p = load_policy("nosedive")
    findings = lint(p)
    # ratings received (peer) and an official's penalty (official) move the score
    for measure_id in [*NOSEDIVE_DENIALS, "prime-housing-discount"]:
        assert trigger_events(p, p.measures_by_id[measure_id]) == ["official.penalty", "peer.rating"]
    aggregate = {f.subject: f.message for f in findings if f.code == "aggregate-score-only"}
    assert sorted(aggregate) == sorted(f"measure '{m}'" for m in NOSEDIVE_DENIALS)
    for measure_id, (service, threshold) in NOSEDIVE_DENIALS.items():
        assert aggregate[f"measure '{measure_id}'"] == (
            f"Measure '{measure_id}' denies '{service}' to scores below {threshold}, a judgment on the "
            "aggregate score alone that any mix of 2 event types (domains: official, peer) can "
            "produce, instead of a specific list or dimension that names the conduct."
        )
    cross = {f.subject: f.message for f in findings if f.code == "cross-context"}
    assert sorted(cross) == sorted(f"measure '{m}'" for m in [*NOSEDIVE_DENIALS, "prime-housing-discount"])
    assert cross["measure 'no-standby-below-4-2'"] == (
        "Measure 'no-standby-below-4-2' denies 'transport.air.standby', but the events that move the "
        "score it depends on all come from domains that are not segments of the service "
        "transport.air.standby (path segments transport, air, standby): official (official.penalty); "
        "peer (peer.rating)."
    )
    # the housing discount is a perk: cross-context, but not an aggregate sanction
    assert "(path segments housing, prime): official (official.penalty); peer (peer.rating)." in (
        cross["measure 'prime-housing-discount'"]
    )
    assert "measure 'prime-housing-discount'" not in aggregate
    assert codes(findings, "no-appeal-path") == [("no-appeal-path", "list 'rating-ring-suspects'")]
    assert codes(findings, "protected-attribute") == []
    assert summarize(findings) == {"error": 0, "warning": 9, "info": 1}


def test_peeple_has_no_measures_no_measure_findings_and_dating_is_not_protected():
    p = load_policy("peeple")
    assert p.measures == ()
    findings = lint(p)
    assert [f for f in findings if f.subject.startswith("measure ")] == []
    # `dating` is a review category (where the reviewer met the subject), not sexual
    # orientation or sex life: it is in the pack, and no protected-attribute error follows
    assert "dating" in p.event_types["peer.rating"].attributes["category"].values
    assert "dating" in [d.id for d in p.dimensions]
    assert protected_terms("dating") == []
    assert protected_terms("Dating") == []
    assert codes(findings, "protected-attribute") == []
    assert [f.to_dict() for f in findings] == [
        {
            "code": "no-appeal-path",
            "severity": "info",
            "subject": "list 'rating-ring-suspects'",
            "message": (
                "List 'rating-ring-suspects' (entered by peer.collusion_flag) has no exit event, so no "
                "payment, correction or successful appeal takes a subject off it early."
            ),
            "reference": "GDPR Art. 16 and 22(3); FCRA dispute and reinvestigation (30 days)",
        }
    ]
    assert summarize(findings) == {"error": 0, "warning": 0, "info": 1}


def test_a_rating_dimension_feeds_score_and_dimension_measures_with_the_rating_event():
    head = """
[policy]
id = "r"
version = "1"
title = "ratings"

[scale]
base = 3.0
min = 1.0
max = 5.0
combine = "weighted"

[[dimensions]]
id = "stars"
label = "Stars"
aggregate = "rating_mean"
weight = 1.0
min = 1.0
max = 5.0
prior_mean = 3.0
prior_weight = 5.0

[[dimensions]]
id = "trust"
label = "Trust"
aggregate = "latest"
weight = 1.0
min = 0.0
max = 2.0
event = "registry.trust"
attribute = "value"
lifetime = "P30D"
"""
    body = """
[event_types."peer.rating"]
domain = "peer"
description = "A rating after an interaction"
attributes.rater = { type = "reference", required = true }
attributes.stars = { type = "integer", min = 1, max = 5, required = true }
attributes.interaction = { type = "string", required = true }

[event_types."peer.opt_in"]
domain = "peer"
description = "Joined the rating app"

[event_types."peer.opt_out"]
domain = "peer"
description = "Left the rating app"

[event_types."registry.trust"]
domain = "registry"
description = "Global trust computed by the registry"
attributes.value = { type = "number", min = 0, required = true }

[ratings]
event = "peer.rating"
"""
    p = policy(
        body
        + measure("score", "{ score_below = 2.5 }", "peer.market")
        + measure("by-stars", '{ dimension = "stars", below = 2.5 }', "registry.listing")
        + measure("by-trust", '{ dimension = "trust", below = 0.5 }', "peer.market"),
        head=head,
    )
    by_id = p.measures_by_id
    assert trigger_events(p, by_id["score"]) == ["peer.rating", "registry.trust"]
    assert trigger_events(p, by_id["by-stars"]) == ["peer.rating"]
    assert trigger_events(p, by_id["by-trust"]) == ["registry.trust"]
    assert codes(lint(p), "cross-context") == [
        ("cross-context", "measure 'by-stars'"),
        ("cross-context", "measure 'by-trust'"),
    ]
