"""The reference fold: each policy primitive, with exact values."""

from __future__ import annotations

import pytest

from socialcredit.scoring.decide import decide
from socialcredit.ledger.entries import EVENT, VOID, Entry
from socialcredit.policy.load import parse_policy
from socialcredit.scoring.compact import compact
from socialcredit.scoring.explain import explain_entries, summarize
from socialcredit.scoring.fold import fold

from conftest import at

POLICY = """
[policy]
id = "toy"
version = "1"
title = "Toy policy for the fold tests"

[scale]
base = 100
min = 0
max = 200

[[dimensions]]
id = "conduct"
label = "Conduct"

[[dimensions]]
id = "civic"
label = "Civic"
weight = 2.0

[event_types."fine.small"]
domain = "fine"
description = "a small fine"
attributes.severity = { type = "string", values = ["low", "high"] }

[event_types."fine.big"]
domain = "fine"
description = "a big fine"

[event_types."civic.help"]
domain = "civic"
description = "helping out"

[event_types."civic.fading"]
domain = "civic"
description = "a good deed that fades"

[event_types."road.crash"]
domain = "road"
description = "a crash"

[event_types."court.listed"]
domain = "court"
description = "listed by a court"
attributes.case = { type = "string", required = true }
attributes.kind = { type = "string", values = ["open", "timed"], required = true }

[event_types."court.paid"]
domain = "court"
description = "paid"
attributes.case = { type = "string", required = true }

[event_types."court.extended"]
domain = "court"
description = "listing extended"
attributes.case = { type = "string", required = true }
attributes.years = { type = "integer", min = 1, max = 3, required = true }

[event_types."court.repaired"]
domain = "court"
description = "credit repaired"
attributes.case = { type = "string", required = true }

[[rules]]
id = "small-low"
event = "fine.small"
match = { severity = "low" }
describe = "a small fine"
dimension = "conduct"
points = -5
lifetime = "P1Y"

[[rules]]
id = "small-high"
event = "fine.small"
match = { severity = "high" }
describe = "a small fine, high"
dimension = "conduct"
points = -15
lifetime = "P1Y"

[[rules]]
id = "big"
event = "fine.big"
describe = "a big fine"
dimension = "conduct"
points = -60
lifetime = "P2Y"

[[rules]]
id = "help"
event = "civic.help"
describe = "helping out"
dimension = "civic"
points = 3
lifetime = "P1Y"
max_per = { count = 2, period = "P1M" }

[[rules]]
id = "fading"
event = "civic.fading"
describe = "a good deed that fades"
dimension = "civic"
points = 8
lifetime = "P1Y"
half_life = "P30D"

[[rules]]
id = "crash-cap"
event = "road.crash"
describe = "a crash, which caps the score"
score_cap = 80
lifetime = "P6M"

[[rules]]
id = "court-mark"
event = "court.listed"
describe = "a court listing"
dimension = "conduct"
points = -20
counts_until = { list = "defaulters", after = "P1Y" }

[[tiers]]
id = "high"
min = 110

[[tiers]]
id = "mid"
min = 90

[[tiers]]
id = "low"

[[lists]]
id = "defaulters"
label = "defaulters list"
case_attribute = "case"
enter = [ { event = "court.listed", match = { kind = "open" } },
          { event = "court.listed", match = { kind = "timed" }, duration = "P2Y" } ]
leave = [ { event = "court.paid" }, { event = "court.repaired", not_before = "P6M" } ]
extend = [ { event = "court.extended", by_attribute = "years", unit = "P1Y" } ]
max_total = "P5Y"

[[measures]]
id = "no-planes"
when = { list = "defaulters" }
service = "transport.air"
effect = "deny"
notice = "No flights while listed."

[[measures]]
id = "no-trains-90d"
when = { list = "defaulters" }
service = "transport.rail.high_speed"
effect = "deny"
duration = "P90D"
notice = "No fast trains for 90 days after listing."

[[measures]]
id = "low-no-loans"
when = { score_below = 90 }
service = "finance.loan"
effect = "deny"
notice = "No loans below 90."

[[measures]]
id = "high-perk"
when = { tier = ["high"] }
service = "transport"
effect = "discount"
notice = "Discount on all transport."

[[measures]]
id = "civic-perk"
when = { dimension = "civic", at_least = 10 }
service = "culture.museum"
effect = "privilege"
notice = "Free museums."
"""

toy = parse_policy(POLICY, "toy.toml")


def events(*specs):
    """(type, when, attributes) → entries with seq 1, 2, ... as the ledger would hold them."""
    return [
        Entry(seq, EVENT, at(when), "s", "person", event_type, at(when), "p", str(seq), attributes)
        for seq, (event_type, when, attributes) in enumerate(specs, start=1)
    ]


def standing(entries, when, known_at=None):
    return fold(toy, entries, at(when), known_at, "s")


def test_no_records_is_the_base_score():
    s = standing([], "2026-01-01")
    assert (s.score, s.tier, s.dimensions, s.measures, s.reasons) == (100, "mid", (0, 0), (), ())


def test_points_count_for_their_lifetime_only():
    history = events(("fine.big", "2024-03-01T00:00:00Z", {}))
    assert standing(history, "2024-02-29").score == 100  # not yet happened
    assert standing(history, "2024-03-01").score == 40
    assert standing(history, "2026-02-28T23:59:59Z").score == 40
    assert standing(history, "2026-03-01").score == 100  # P2Y later: expired


def test_calendar_years_clamp_at_month_end():
    history = events(("fine.small", "2024-02-29T12:00:00Z", {"severity": "low"}))
    s = standing(history, "2024-03-01")
    assert s.contributions[0].until_us == at("2025-02-28T12:00:00Z")


def test_attribute_match_picks_the_rule():
    history = events(("fine.small", "2026-01-01T00:00:00Z", {"severity": "low"}),
                     ("fine.small", "2026-01-02T00:00:00Z", {"severity": "high"}))
    s = standing(history, "2026-02-01")
    assert s.score == 80
    assert sorted(c.rule.id for c in s.contributions) == ["small-high", "small-low"]


def test_cap_per_calendar_month_counts_the_first_ones():
    history = events(*[("civic.help", f"2026-03-{d:02d}T00:00:00Z", {}) for d in (1, 5, 9, 30)],
                     ("civic.help", "2026-04-01T00:00:00Z", {}))
    s = standing(history, "2026-05-01")
    assert [c.status for c in s.contributions] == ["counts", "counts", "capped", "capped", "counts"]
    assert s.dimensions == (0, 9) and s.score == 100 + 2 * 9
    words = explain_entries(s)[2].effects[0].text
    assert "at most 2 of these per calendar month" in words


def test_half_life_decays_and_marks_the_standing_uncacheable():
    history = events(("civic.fading", "2026-01-01T00:00:00Z", {}))
    fresh, later = standing(history, "2026-01-01"), standing(history, "2026-01-31")
    assert fresh.dimensions == (0, 8)
    # 30 days is one half-life (approximately: P30D exactly) → 4 points, doubled by weight 2.
    assert later.dimensions == (0, 4) and later.score == 108
    assert not later.cacheable and fresh.cacheable is False


def test_score_cap_holds_the_score_while_it_counts():
    history = events(("civic.help", "2026-01-01T00:00:00Z", {}), ("road.crash", "2026-01-02T00:00:00Z", {}))
    assert standing(history, "2026-01-01T12:00:00Z").score == 106
    capped = standing(history, "2026-02-01")
    assert capped.score == 80 and capped.reasons[0].kind == "cap"
    assert standing(history, "2026-07-02").score == 106  # cap lifetime P6M over


def test_listing_without_term_lasts_until_paid():
    history = events(("court.listed", "2026-01-01T00:00:00Z", {"case": "A", "kind": "open"}),
                     ("court.paid", "2026-06-01T00:00:00Z", {"case": "A"}))
    during = standing(history, "2026-03-01")
    assert [s.list_id for s in during.active_lists] == ["defaulters"]
    assert during.active_lists[0].until_us is None  # as known then: no end yet
    assert standing(history, "2026-06-01").active_lists == ()


def test_payment_for_another_case_does_not_delist():
    history = events(("court.listed", "2026-01-01T00:00:00Z", {"case": "A", "kind": "open"}),
                     ("court.paid", "2026-02-01T00:00:00Z", {"case": "B"}))
    assert len(standing(history, "2026-03-01").active_lists) == 1


def test_timed_listing_extension_stops_at_max_total():
    history = events(("court.listed", "2026-01-01T00:00:00Z", {"case": "A", "kind": "timed"}),
                     ("court.extended", "2027-06-01T00:00:00Z", {"case": "A", "years": 3}),
                     ("court.extended", "2027-07-01T00:00:00Z", {"case": "A", "years": 3}))
    s = standing(history, "2027-08-01")
    spell = s.active_lists[0]
    assert spell.until_us == at("2031-01-01")  # 2 years + 3 = 5; the second extension hits the cap
    assert standing(history, "2030-12-31").active_lists and not standing(history, "2031-01-01").active_lists


def test_repair_is_refused_before_the_waiting_period():
    early = events(("court.listed", "2026-01-01T00:00:00Z", {"case": "A", "kind": "open"}),
                   ("court.repaired", "2026-03-01T00:00:00Z", {"case": "A"}))
    late = events(("court.listed", "2026-01-01T00:00:00Z", {"case": "A", "kind": "open"}),
                  ("court.repaired", "2026-07-01T00:00:00Z", {"case": "A"}))
    assert standing(early, "2026-08-01").active_lists  # too early: still listed
    assert "minimum period" in explain_entries(standing(early, "2026-08-01"))[1].effects[0].text
    assert not standing(late, "2026-08-01").active_lists


def test_counts_until_the_listing_ends_plus_a_period():
    history = events(("court.listed", "2026-01-01T00:00:00Z", {"case": "A", "kind": "open"}),
                     ("court.paid", "2026-06-01T00:00:00Z", {"case": "A"}))
    assert standing(history, "2026-03-01").score == 80
    assert standing(history, "2027-05-31").score == 80  # still within a year after payment
    assert standing(history, "2027-06-01").score == 100


def test_measures_on_a_list_and_their_end():
    history = events(("court.listed", "2026-01-01T00:00:00Z", {"case": "A", "kind": "timed"}))
    s = standing(history, "2026-02-01")
    by_id = {m.id: m for m in s.measures}
    assert set(by_id) == {"no-planes", "no-trains-90d", "low-no-loans"}  # −20 → 80 < 90
    assert by_id["no-planes"].until_us == at("2028-01-01")
    assert by_id["no-trains-90d"].until_us == at("2026-04-01")  # duration P90D from listing
    assert "no-trains-90d" not in {m.id for m in standing(history, "2026-05-01").measures}


def test_score_measure_says_when_it_lifts_by_itself():
    history = events(("fine.big", "2026-01-01T00:00:00Z", {}))
    s = standing(history, "2026-02-01")
    loans = next(m for m in s.measures if m.id == "low-no-loans")
    assert loans.until_us == at("2028-01-01")
    assert [r.ident for r in loans.reasons] == ["big"]


def test_services_are_hierarchical_downwards_only():
    history = events(("court.listed", "2026-01-01T00:00:00Z", {"case": "A", "kind": "open"}))
    s = standing(history, "2026-02-01")
    active = compact(s).measures
    assert decide(toy, active, "transport.air")[0] is False
    assert decide(toy, active, "transport.air.domestic")[0] is False  # below a denied service
    assert decide(toy, active, "transport")[0] is True  # above it: not covered
    assert decide(toy, active, "transport.rail.high_speed")[:2] == (False, "deny")
    assert decide(toy, active, "transport.rail.regular")[:2] == (True, "allow")


def test_a_favourable_measure_and_its_reasons():
    history = events(*[("civic.help", f"2026-{m:02d}-01T00:00:00Z", {}) for m in range(1, 5)])
    s = standing(history, "2026-05-01")
    assert s.score == 124 and s.tier == "high"
    active = compact(s).measures
    allowed, effect, applied, reasons = decide(toy, active, "transport.bus")
    assert (allowed, effect, [a[0] for a in applied]) == (True, "discount", ["high-perk"])
    assert len(reasons) == 4 and all(r[1] == "help" for r in reasons)
    assert decide(toy, active, "culture.museum")[1] == "privilege"  # civic dimension 12 ≥ 10


def test_at_most_four_reasons_most_significant_first():
    history = events(*[("fine.small", f"2026-01-{d:02d}T00:00:00Z", {"severity": "low"}) for d in range(1, 6)],
                     ("fine.big", "2026-01-10T00:00:00Z", {}))
    s = standing(history, "2026-02-01")
    active = compact(s).measures
    _, _, _, reasons = decide(toy, active, "finance.loan")
    assert [r[1] for r in reasons] == ["big", "small-low", "small-low", "small-low"]
    assert [r[2] for r in reasons] == [6, 5, 4, 3]  # then the most recent first


def test_known_at_and_voids():
    history = events(("fine.big", "2026-01-01T00:00:00Z", {}))
    history.append(Entry(2, VOID, at("2026-02-01"), "s", target=1, reason="wrong person"))
    assert standing(history, "2026-03-01").score == 100
    assert standing(history, "2026-03-01", known_at=2).score == 40
    assert standing(history, "2026-03-01", known_at=1).score == 100  # entry 1 not yet known


def test_a_late_event_changes_now_but_not_the_past_view():
    history = events(("fine.big", "2026-05-01T00:00:00Z", {}), ("fine.small", "2026-01-01T00:00:00Z", {"severity": "high"}))
    # Entry 2 occurred in January but was recorded after entry 1.
    assert standing(history, "2026-06-01").score == 25
    assert standing(history, "2026-06-01", known_at=2).score == 40


def test_validity_interval_brackets_the_next_change():
    history = events(("fine.small", "2026-01-01T00:00:00Z", {"severity": "low"}),
                     ("fine.big", "2026-09-01T00:00:00Z", {}))
    s = standing(history, "2026-03-01")
    assert (s.valid_from_us, s.valid_until_us) == (at("2026-01-01"), at("2026-09-01"))
    after = standing(history, "2027-02-01")
    assert (after.valid_from_us, after.valid_until_us) == (at("2027-01-01"), at("2028-09-01"))


def test_summary_words():
    history = events(("fine.big", "2026-01-01T00:00:00Z", {}),
                     ("court.listed", "2026-01-05T00:00:00Z", {"case": "A-1", "kind": "open"}))
    summary = summarize(standing(history, "2026-02-01"))
    texts = [r["text"] for r in summary["reasons"]]
    assert texts[0] == ("On the defaulters list since 2026-01-05 (record #2, case A-1), "
                        "with no end date: it lasts until you do what lifts it.")
    assert texts[1] == ("\u221260 points on conduct (about \u221260 on the score): a big fine (record #1, 2026-01-01); "
                        "counts until 2028-01-01.")
    assert summary["policy"] == {"id": "toy", "version": "1", "digest": toy.digest, "timezone": "UTC"}


@pytest.mark.parametrize("bad, message", [
    ('lifetime = "P1Y"', "needs a `lifetime`"),
    ('dimension = "nope"', "unknown dimension"),
])
def test_policy_errors_name_the_place(bad, message):
    text = POLICY.replace('lifetime = "P1Y"\nmax_per', 'max_per', 1) if "lifetime" in bad else POLICY.replace(
        'dimension = "civic"\npoints = 3', 'dimension = "nope"\npoints = 3')
    from socialcredit.policy.load import PolicyError

    with pytest.raises(PolicyError) as error:
        parse_policy(text, "toy.toml")
    assert str(error.value).startswith("toy.toml: ")
    assert message in str(error.value)


def test_tiers_must_be_written_top_down():
    from socialcredit.policy.load import PolicyError

    swapped = POLICY.replace('id = "high"\nmin = 110', 'id = "high"\nmin = 80')
    with pytest.raises(PolicyError, match="tiers must be listed from the highest `min` down"):
        parse_policy(swapped, "toy.toml")


def test_a_measure_that_ran_its_duration_still_bounds_the_validity_interval():
    history = events(("court.listed", "2026-01-01T00:00:00Z", {"case": "A", "kind": "open"}))
    later = standing(history, "2026-06-01")
    assert "no-trains-90d" not in {m.id for m in later.measures}
    assert later.valid_from_us >= at("2026-04-01")  # the 90 days ended then: nothing before it is covered
