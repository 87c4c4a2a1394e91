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
    assert "'transport.air'" in finding.message
    assert "(domain transport)" in finding.message
    assert "list 'defaulters'" in finding.message
    assert "court (court.judgment_unfulfilled)" in finding.message
    # only enter triggers count: the leave event is not named
    assert "court.judgment_paid" not in finding.message


def test_list_measure_in_its_own_domain_is_not_cross_context():
    p = policy(COURT_LIST + measure("no-court-fee-waiver", '{ list = "defaulters" }', "court.fee_waiver"))
    assert codes(lint(p), "cross-context") == []


def test_the_domain_comparison_is_literal():
    # rail events are in the `rail` domain, not `transport`: the rule says cross-context.
    body = """
[event_types."rail.fare_evasion"]
domain = "rail"
description = "Fare evasion on a train"

[[lists]]
id = "rail-ban"
label = "Railway ticket ban"
enter = [{ event = "rail.fare_evasion", duration = "P180D" }]
"""
    p = policy(body + measure("no-trains", '{ list = "rail-ban" }', "transport.rail"))
    finding = only(lint(p), "cross-context")
    assert "'transport.rail'" in finding.message
    assert "rail (rail.fare_evasion)" in finding.message
    q = policy(body + measure("no-trains", '{ list = "rail-ban" }', "rail.tickets"))
    assert codes(lint(q), "cross-context") == []


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
        "Measure 'bikes' waives the deposit for 'transport.bike_share' (domain transport), but the "
        "events that move the score it depends on all come from other domains: finance "
        "(finance.bank_arrears); traffic (traffic.drunk_driving); utility (utility.late_payment)."
    )


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
    assert "utility (utility.late_payment)" in finding.message
    assert "finance.bank_arrears" not in finding.message
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
    assert "'defaulter-points' (court.judgment_unfulfilled, while on list 'defaulters')" in finding.message


def test_score_measure_fed_by_rules_with_lifetimes_is_bounded():
    p = policy(SCORED + measure("no-loans", "{ score_below = 900 }", "finance.loan"))
    assert codes(lint(p), "no-duration") == []


# -- aggregate score only --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "phrase"),
    [
        ('{ tier = ["C"] }', "to grades C"),
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
    assert summary["error"] == 7
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
    assert "'transport.bike_share' (domain transport)" in finding.message
    for domain in ("civic", "commerce", "court", "finance", "traffic", "utility"):
        assert f"{domain} (" in finding.message
    # Loans are refused for conduct that includes financial events: same context, not flagged.
    assert ("cross-context", "measure 'low-grade-no-loans'") not in codes(findings)
    assert summarize(findings) == {"error": 0, "warning": 6, "info": 0}


def test_rongcheng_heating_perk_is_triggered_by_many_domains_including_utility():
    p = load_policy("rongcheng")
    heating = next(m for m in p.measures if m.id == "heating-discount")
    domains = {p.event_types[e].domain for e in trigger_events(p, heating)}
    assert domains == {"civic", "commerce", "court", "finance", "traffic", "utility"}
    assert "traffic.drunk_driving" in trigger_events(p, heating)  # a score cap feeds the tier too


@pytest.mark.parametrize("name", pack_names())
def test_every_shipped_pack_lints_cleanly_formed_findings(name):
    findings = lint(load_policy(name))
    for finding in findings:
        assert finding.severity in ("error", "warning", "info")
        assert finding.code.replace("-", "").isalpha() and finding.code == finding.code.lower()
        assert finding.message.endswith(".") and finding.reference
    assert [f for f in findings if f.code == "protected-attribute"] == []


@pytest.mark.skipif("china-judgment-defaulters" not in pack_names(), reason="pack not written yet")
def test_china_flight_ban_is_cross_context_and_rail_follows_the_literal_rule():
    p = load_policy("china-judgment-defaulters")
    findings = lint(p)
    reported = {f.subject: f.message for f in findings if f.code == "cross-context"}
    flights = [m for m in p.measures if m.service.startswith("transport.air") and m.effect == "deny"]
    assert flights
    for m in flights:
        assert m.kind == "list"
        assert {p.event_types[e].domain for e in trigger_events(p, m)} == {"court"}
        assert "(domain transport)" in reported[f"measure '{m.id}'"]
        assert "court (court." in reported[f"measure '{m.id}'"]
    rail = [m for m in p.measures if m.service.startswith("transport.rail") and m.kind == "list"]
    assert rail
    for m in rail:
        domains = {p.event_types[e].domain for e in trigger_events(p, m)}
        assert (f"measure '{m.id}'" in reported) == ("transport" not in domains)
    # the railway's own list is entered by `rail` events: literally not the `transport` domain
    railway = [m for m in rail if {p.event_types[e].domain for e in trigger_events(p, m)} == {"rail"}]
    assert railway
    assert all("rail (rail." in reported[f"measure '{m.id}'"] for m in railway)
    assert codes(findings, "protected-attribute") == []
    assert codes(findings, "aggregate-score-only") == []


@pytest.mark.skipif("sesame" not in pack_names(), reason="pack not written yet")
def test_sesame_score_perks_are_not_aggregate_sanctions_but_court_bans_are_cross_context():
    p = load_policy("sesame")
    findings = lint(p)
    assert codes(findings, "aggregate-score-only") == []
    perks = [m for m in p.measures if m.kind in ("tier", "score_below", "score_at_least")]
    assert perks and all(m.effect not in ("deny", "deposit_required", "extra_inspection") for m in perks)
    reported = {f.subject: f.message for f in findings if f.code == "cross-context"}
    bans = [m for m in p.measures if m.kind == "list" and m.effect == "deny"]
    assert bans
    for m in bans:
        domains = {p.event_types[e].domain for e in trigger_events(p, m)}
        assert (f"measure '{m.id}'" in reported) == (m.service.split(".")[0] not in domains)
    assert any(f"measure '{m.id}'" in reported for m in bans)
    assert codes(findings, "protected-attribute") == []
