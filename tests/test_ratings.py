"""People rating people: Nosedive's weighted ratings and penalty mode, Peeple's consent, hold
and positivity, the abuse limits, and the shape of the episode."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from socialcredit.ledger import merkle
from socialcredit.errors import SocialCreditError

from conftest import allow_tampering, behind_its_back, event

DAY = "2026-05-{:02d}T{:02d}:00:00Z"


def _enrol(registry, *people, when="2026-05-01T00:00:00Z", **facts):
    for person in people:
        registry.enrol(person, at=when, attributes=facts or None)


def _rate_many(registry, raters, ratee, stars, day, tag):
    events = [
        event(ratee, "peer.rating", DAY.format(day, 1 + i % 20), f"{tag}-{rater}-{ratee}", provider="app",
              rater=rater, stars=stars, interaction=f"{tag}-{rater}")
        for i, rater in enumerate(raters)
    ]
    result = registry.ingest(events)
    assert result.accepted == len(events), result.errors
    return result


def _town(registry):
    """Twenty ordinary raters (3.0), five high fours (≥ 4.5), five low raters (< 2.5)."""
    mids = [f"mid{i}" for i in range(20)]
    highs = [f"high{i}" for i in range(5)]
    lows = [f"low{i}" for i in range(5)]
    _enrol(registry, *mids, *highs, *lows)
    for person in highs:
        _rate_many(registry, mids[:16], person, 5, 2, f"boost-{person}")
    for person in lows:
        _rate_many(registry, mids[:8], person, 1, 2, f"sink-{person}")
    return mids, highs, lows


def test_the_episode_high_fours_sink_you_faster_and_penalty_mode_steeper(make_registry):
    registry = make_registry("nosedive")
    mids, highs, lows = _town(registry)
    assert all(registry.standing(h, at="2026-05-03").score >= 4.5 for h in highs)
    assert all(registry.standing(p, at="2026-05-03").score < 2.5 for p in lows)
    for lacie in ("lacie_a", "lacie_b", "lacie_c"):  # three identical lives...
        _rate_many(registry, mids[:8], lacie, 5, 3, f"good-{lacie}")
    start = registry.standing("lacie_a", at="2026-05-04").score
    assert start == pytest.approx(4.231, abs=1e-3)
    assert registry.check("lacie_a", "transport.air.standby", at="2026-05-04").allowed

    registry.ingest([event("lacie_c", "official.penalty", "2026-05-05T00:00:00Z", "pen-c", provider="city")])
    _rate_many(registry, highs, "lacie_a", 1, 5, "bad")  # ...then one bad day
    _rate_many(registry, lows, "lacie_b", 1, 5, "bad")
    _rate_many(registry, lows, "lacie_c", 1, 5, "bad")
    after = {name: registry.standing(name, at="2026-05-05T23:00:00Z").score for name in ("lacie_a", "lacie_b", "lacie_c")}
    assert after["lacie_a"] == pytest.approx((15 + 40 + 5 * 5 * 1) / (5 + 8 + 25), abs=1e-3)  # 2.105
    assert after["lacie_b"] == pytest.approx((15 + 40 + 5 * 0.25) / (5 + 8 + 1.25), abs=1e-3)  # 3.947
    assert after["lacie_c"] == pytest.approx((15 + 40 + 5 * 0.5) / (5 + 8 + 2.5) - 1, abs=1e-3)  # 2.710
    assert after["lacie_a"] < after["lacie_c"] < after["lacie_b"] < start

    def allowed(name, service):
        return registry.check(name, service, at="2026-05-05T23:00:00Z").allowed

    assert [allowed(n, "transport.air.standby") for n in ("lacie_a", "lacie_b", "lacie_c")] == [False, False, False]
    assert [allowed(n, "venue.entry") for n in ("lacie_a", "lacie_b", "lacie_c")] == [False, True, False]
    assert [allowed(n, "employment.office_access") for n in ("lacie_a", "lacie_b", "lacie_c")] == [False, True, True]
    # Penalty mode lasts 24 hours: the point comes back, the doubled ratings stay doubled.
    assert registry.standing("lacie_c", at="2026-05-06T01:00:00Z").score == pytest.approx(3.710, abs=1e-3)


def test_a_ratings_weight_and_why_are_fixed_at_ingest_and_hashed(make_registry):
    registry = make_registry("nosedive")
    mids, highs, _ = _town(registry)
    result = registry.rate(highs[0], "susan", 2, interaction="lift", at="2026-05-04T00:00:00Z")
    entry = registry.store.ledger.entry(result.entry)
    assert entry.derived["weight"] == 5.0
    assert entry.derived["why"].startswith("the rater's score was 4.524 on 2026-05-04")
    assert entry.derived["why"].endswith("bucket at least 4.5 weighs 5")
    # Later the rater falls; the weight of the rating given earlier does not move.
    _rate_many(registry, mids, highs[0], 1, 6, "fall")
    assert registry.standing(highs[0], at="2026-05-07").score < 3.0
    rating = registry.standing("susan", at="2026-05-07").ratings[0]
    assert (rating.stars, rating.weight) == (2, 5.0)
    assert registry.verify().ok
    with behind_its_back(registry) as conn:
        allow_tampering(conn, registry.store.db.backend)
        conn.execute(text("UPDATE entries SET body = replace(body, :old, :new) WHERE seq = :s"),
                     {"old": '"weight":5.0', "new": '"weight":0.25', "s": result.entry})
    assert ("modified", result.entry) in {(p.kind, p.entry) for p in registry.verify().problems}


def test_newcomers_start_at_the_prior_not_at_five(make_registry):
    registry = make_registry("nosedive")
    _enrol(registry, "fan")
    registry.rate("fan", "newbie", 5, at="2026-05-02T00:00:00Z")
    assert registry.standing("newbie", at="2026-05-03").score == pytest.approx((15 + 5) / 6, abs=1e-3)
    assert registry.standing("nobody", at="2026-05-03").score == 3.0


def test_the_last_hundred_ratings_count(make_registry):
    registry = make_registry("nosedive")
    raters = [f"r{i}" for i in range(120)]
    _enrol(registry, *raters)
    _rate_many(registry, raters[:20], "pat", 1, 2, "old")
    _rate_many(registry, raters[20:], "pat", 5, 3, "new")
    # The 20 old one-star ratings fell out of the window: 100 fives and the prior remain.
    assert registry.standing("pat", at="2026-05-04").score == pytest.approx((15 + 500) / 105, abs=1e-3)


@pytest.mark.parametrize("mistake, message", [
    (dict(rater="ann", ratee="ann", stars=4), "cannot rate themself"),
    (dict(rater="stranger", ratee="ann", stars=4), "has not opted in"),
    (dict(rater="bob", ratee="ann", stars=0), "must be at least 1"),
    (dict(rater="bob", ratee="ann", stars=6), "must be at most 5"),
])
def test_bad_ratings_are_refused_with_one_line_and_nothing_written(make_registry, mistake, message):
    registry = make_registry("nosedive")
    _enrol(registry, "ann", "bob")
    before = registry.root()
    with pytest.raises(Exception) as error:
        registry.rate(mistake["rater"], mistake["ratee"], mistake["stars"], at="2026-05-02T00:00:00Z")
    assert message in str(error.value) and "\n" not in str(error.value)
    assert registry.root() == before


def test_one_rating_per_rater_subject_and_interaction(make_registry):
    registry = make_registry("nosedive")
    _enrol(registry, "ann", "bob")
    first = registry.rate("bob", "ann", 4, interaction="taxi", at="2026-05-02T00:00:00Z")
    again = registry.rate("bob", "ann", 4, interaction="taxi", at="2026-05-02T00:00:00Z")
    assert first.accepted == 1 and again.duplicate is True
    with pytest.raises(SocialCreditError, match="already rated this subject for interaction 'taxi'"):
        registry.rate("bob", "ann", 1, interaction="taxi", at="2026-05-02T00:00:00Z")
    # Through ingest with another key, the same interaction is refused too.
    result = registry.ingest([event("ann", "peer.rating", "2026-05-02T01:00:00Z", "other-key", provider="app",
                                    rater="bob", stars=2, interaction="taxi")])
    assert result.accepted == 0 and "already rated this subject for interaction 'taxi' (entry #" in result.errors[0].error


def test_a_daily_cap_per_rater(make_registry, tmp_path):
    from socialcredit.policy.load import load_policy, parse_policy

    text_ = load_policy("nosedive").text.replace("daily_cap = 200", "daily_cap = 3")
    registry = make_registry(parse_policy(text_, "capped.toml"))
    people = [f"p{i}" for i in range(6)]
    _enrol(registry, "rater", *people)
    events = [event(p, "peer.rating", "2026-05-02T10:00:00Z", f"k{p}", provider="app", rater="rater", stars=5,
                    interaction="i") for p in people[:5]]
    result = registry.ingest(events, skip_invalid=True)
    assert result.accepted == 3
    assert [e.line for e in result.errors] == [4, 5]
    assert "daily cap of 3 ratings on 2026-05-02" in result.errors[0].error
    tomorrow = registry.rate("rater", people[5], 5, at="2026-05-03T10:00:00Z")
    assert tomorrow.accepted == 1


def test_opting_out_stops_rating_but_not_being_rated_in_nosedive(make_registry):
    registry = make_registry("nosedive")
    _enrol(registry, "ann", "bob")
    registry.enrol("bob", leave=True, at="2026-05-03T00:00:00Z")
    with pytest.raises(SocialCreditError, match="opted out"):
        registry.rate("bob", "ann", 5, at="2026-05-04T00:00:00Z")
    registry.rate("ann", "bob", 5, at="2026-05-04T00:00:00Z")  # anyone can be rated: that is the episode
    assert registry.rate("bob", "ann", 5, interaction="before", at="2026-05-02T00:00:00Z").accepted == 1


# -- Peeple ------------------------------------------------------------------------------------

FACTS = dict(age="30", phone_verified="verified", real_name="verified", account_age_days="400")


def _peeple(make_registry, *people):
    registry = make_registry("peeple")
    _enrol(registry, *people, **FACTS)
    return registry


def test_peeple_only_rates_subjects_who_consented(make_registry):
    registry = _peeple(make_registry, "reviewer")
    with pytest.raises(SocialCreditError, match="has not consented to be rated"):
        registry.rate("reviewer", "outsider", 5, category="personal", at="2026-05-02T00:00:00Z")


def test_peeple_enrolment_needs_the_reviewer_facts(make_registry):
    registry = make_registry("peeple")
    with pytest.raises(SocialCreditError, match="age"):
        registry.enrol("teen", at="2026-05-01T00:00:00Z", attributes=dict(FACTS, age="19"))
    with pytest.raises(SocialCreditError, match="account_age_days"):
        registry.enrol("new", at="2026-05-01T00:00:00Z", attributes=dict(FACTS, account_age_days="30"))


def test_peeple_categories(make_registry):
    registry = _peeple(make_registry, "a", "b")
    with pytest.raises(SocialCreditError, match="must be one of dating, personal, professional"):
        registry.rate("a", "b", 4, category="romantic", at="2026-05-02T00:00:00Z")
    registry.rate("a", "b", 5, category="professional", at="2026-05-02T00:00:00Z")
    standing = registry.standing("b", at="2026-05-03")
    assert standing.dimensions == {"personal": 3.0, "professional": pytest.approx(3.67, abs=0.01), "dating": 3.0}


def test_peeple_negative_reviews_wait_48_hours_and_can_be_disputed(make_registry):
    registry = _peeple(make_registry, "a", "b", "c")
    low = registry.rate("a", "c", 1, category="personal", review="rude", at="2026-05-02T10:00:00Z").entry
    disputed = registry.rate("b", "c", 2, category="personal", at="2026-05-02T11:00:00Z").entry
    registry.respond("c", disputed, dispute="never met this person", at="2026-05-03T09:00:00Z")
    registry.respond("c", low, reply="I was having a bad day", at="2026-05-03T10:00:00Z")
    during = registry.reviews("c", at="2026-05-03T12:00:00Z")
    assert during.score == 3.0  # nothing negative counts yet
    by_entry = {r.entry: r for r in during.reviews}
    assert by_entry[low].held and by_entry[low].hold_until == "2026-05-04T10:00:00Z"
    assert by_entry[low].replies[0].text == "I was having a bad day"
    assert by_entry[disputed].status == "disputed"
    after = registry.reviews("c", at="2026-05-05T00:00:00Z")
    assert {r.entry: r.status for r in after.reviews} == {low: "counts", disputed: "disputed"}
    assert after.dimensions["personal"] == pytest.approx((6 + 1) / 3, abs=0.01)


def test_peeple_a_late_dispute_is_refused_and_the_review_counts(make_registry):
    registry = _peeple(make_registry, "a", "c")
    low = registry.rate("a", "c", 1, category="personal", at="2026-05-02T10:00:00Z").entry
    before = registry.root()
    with pytest.raises(SocialCreditError, match=f"the hold of review #{low} ended on 2026-05-04: a dispute must "
                                                "come during the hold"):
        registry.respond("c", low, dispute="too late", at="2026-05-05T10:00:00Z")
    assert registry.root() == before  # nothing written
    assert registry.reviews("c", at="2026-05-06").reviews[0].status == "counts"


def test_peeple_a_dispute_of_a_review_that_is_not_held_is_refused(make_registry):
    registry = _peeple(make_registry, "a", "c")
    kind = registry.rate("a", "c", 5, category="personal", at="2026-05-02T10:00:00Z").entry
    with pytest.raises(SocialCreditError, match=f"review #{kind} is not held"):
        registry.respond("c", kind, dispute="too kind", at="2026-05-02T11:00:00Z")


def test_peeple_serial_negative_reviewers_count_less(make_registry):
    registry = _peeple(make_registry, "grump", "x1", "x2", "x3", "x4", "target")
    for i, victim in enumerate(["x1", "x2", "x3", "x4"]):
        registry.rate("grump", victim, 1, category="professional", at=f"2026-05-02T1{i}:00:00Z")
    result = registry.rate("grump", "target", 2, category="professional", at="2026-05-03T00:00:00Z")
    entry = registry.store.ledger.entry(result.entry)
    # positivity (0 + 1) / (4 + 2) = 1/6; weight min(1, (1/6) / 0.5) = 1/3
    assert entry.derived["weight"] == pytest.approx(1 / 3, abs=1e-6)
    assert "reviewer positivity 0.17 (0 of 4 earlier reviews positive): ×0.33" in entry.derived["why"]


def test_peeple_has_no_sanctions(make_registry):
    registry = _peeple(make_registry, "a", "b")
    registry.rate("a", "b", 1, category="professional", at="2026-05-02T00:00:00Z")
    standing = registry.standing("b", at="2026-05-10")
    assert standing.measures == []
    assert registry.check("b", "employment.office_access", at="2026-05-10").allowed


# -- global trust and rings ----------------------------------------------------------------------


def test_trust_is_recorded_and_rings_are_flagged_and_discounted(make_registry):
    registry = _peeple(make_registry, *[f"h{i}" for i in range(12)], *[f"ring{i}" for i in range(4)], "target")
    honest = [f"h{i}" for i in range(12)]
    ring = [f"ring{i}" for i in range(4)]
    events = []
    for i, rater in enumerate(honest):
        for j in (1, 2, 5):
            events.append(event(honest[(i + j) % 12], "peer.rating", "2026-05-02T10:00:00Z", f"h{i}-{j}",
                                provider="app", rater=rater, stars=5, interaction="x", category="personal"))
    for a in ring:
        for b in ring:
            if a != b:
                events.append(event(b, "peer.rating", "2026-05-02T11:00:00Z", f"{a}-{b}", provider="app", rater=a,
                                    stars=5, interaction="x", category="professional"))
    assert registry.ingest(events).accepted == len(events)
    result = registry.trust(record=True)
    assert len(result.rings) == 1
    assert sorted(result.rings[0].members) == sorted(registry.pseudonym(r) for r in ring)
    assert result.recorded == result.subjects + 4
    flagged = registry.standing("ring0")
    assert flagged.lists[0].list == "rating-ring-suspects"
    assert "suspected rating rings" in flagged.reasons[0].text
    # A review from a flagged reviewer now weighs a fifth.
    review = registry.rate("ring0", "target", 5, category="personal")
    entry = registry.store.ledger.entry(review.entry)
    assert entry.derived["weight"] == pytest.approx(0.2)
    assert "on the list of suspected rating rings: ×0.2" in entry.derived["why"]
    assert registry.verify().ok


TRUST_WEIGHTED = """
[policy]
id = "trust-weighted"
version = "1"
title = "Ratings weighted by global trust"

[scale]
base = 3.0
min = 1.0
max = 5.0
combine = "weighted"
decimals = 3

[[dimensions]]
id = "rating"
label = "Rating"
aggregate = "rating_mean"
min = 1.0
max = 5.0
prior_mean = 3.0
prior_weight = 1.0

[[dimensions]]
id = "trust"
label = "Global trust"
aggregate = "latest"
weight = 0.0
min = 0.0
max = 100.0
event = "peer.trust"
attribute = "value"
lifetime = "P30D"

[event_types."peer.rating"]
domain = "peer"
description = "a rating"
attributes.rater = { type = "reference", required = true }
attributes.stars = { type = "integer", min = 1, max = 5, required = true }
attributes.interaction = { type = "string", required = true }

[event_types."peer.opt_in"]
domain = "peer"
description = "opt in"

[event_types."peer.opt_out"]
domain = "peer"
description = "opt out"

[event_types."peer.trust"]
domain = "peer"
description = "global trust"
attributes.value = { type = "number", min = 0, required = true }

[ratings]
pretrusted = ["seed"]

[ratings.weight]
source = "trust"
explain = "The rater's global trust: below 0.5 of average → 0, from 0.5 → 1, from 2 → 3."
buckets = [ { at_least = 0.5, weight = 1.0 }, { at_least = 2.0, weight = 3.0 } ]
"""


def test_global_trust_as_a_dimension_and_a_rater_weight(make_registry):
    from socialcredit.policy.load import parse_policy

    registry = make_registry(parse_policy(TRUST_WEIGHTED, "trust-weighted.toml"))
    _enrol(registry, "seed", "friend", "loner", "target")
    registry.rate("seed", "friend", 5, at="2026-05-02T00:00:00Z")
    registry.rate("loner", "target", 5, at="2026-05-02T00:00:00Z")
    before = registry.store.ledger.entry(registry.size() - 1).derived
    assert before["weight"] == 0.0 and "global trust was 0" in before["why"]  # no trust recorded yet
    result = registry.trust(record=True)
    relative = {item.subject: item.relative_trust for item in result.trust}
    assert relative[registry.pseudonym("friend")] > 1.0
    assert registry.standing("friend").dimensions["trust"] == pytest.approx(
        relative[registry.pseudonym("friend")], abs=1e-3)
    weights = {}
    for rater in ("seed", "friend", "loner"):
        rating = registry.rate(rater, "target", 1, interaction=f"later-{rater}")
        weights[rater] = registry.store.ledger.entry(rating.entry).derived["weight"]
    # seed ≈ 2.16 of average → 3; friend ≈ 1.84 → 1; the loner, trusted by nobody, → 0.
    assert weights == {"seed": 3.0, "friend": 1.0, "loner": 0.0}


def test_a_continuous_rater_weight(make_registry):
    from socialcredit.policy.load import load_policy, parse_policy

    text_ = load_policy("nosedive").text
    start = text_.index("buckets = [")
    end = text_.index("]", text_.index("{ at_least = 4.5")) + 1
    linear = text_[:start] + "linear = { low = 1.0, high = 5.0, weight_low = 0.0, weight_high = 4.0 }" + text_[end:]
    registry = make_registry(parse_policy(linear, "linear.toml"))
    _enrol(registry, "ann", "bob")
    rating = registry.rate("ann", "bob", 5, at="2026-05-02T00:00:00Z")
    derived = registry.store.ledger.entry(rating.entry).derived
    # ann is a newcomer at 3.0: halfway along the line from 1.0 (weight 0) to 5.0 (weight 4).
    assert derived["weight"] == 2.0
    assert "on the line from 1 (weight 0) to 5 (weight 4) that weighs 2" in derived["why"]


# -- fixes found in review ---------------------------------------------------------------------


def test_cancelled_reviews_do_not_count_against_a_reviewers_positivity(make_registry):
    registry = _peeple(make_registry, "grump", "x1", "x2", "x3", "target")
    entries = [registry.rate("grump", victim, 1, category="professional", at=f"2026-05-02T1{i}:00:00Z").entry
               for i, victim in enumerate(["x1", "x2", "x3"])]
    for seq in entries:
        registry.void(seq, "posted by mistake")
    review = registry.rate("grump", "target", 4, category="professional", at="2026-05-03T00:00:00Z")
    assert registry.store.ledger.entry(review.entry).derived["weight"] == 1.0
    assert registry.verify().ok


def test_positivity_counts_only_reviews_written_before_this_one(make_registry):
    registry = _peeple(make_registry, "grump", "x1", "x2", "target")
    registry.rate("grump", "x1", 1, category="personal", at="2026-05-05T00:00:00Z")
    registry.rate("grump", "x2", 1, category="personal", at="2026-05-06T00:00:00Z")
    earlier = registry.rate("grump", "target", 4, category="personal", at="2026-05-02T00:00:00Z")
    assert registry.store.ledger.entry(earlier.entry).derived["weight"] == 1.0  # written before the grumpy ones


def test_a_cancelled_rating_frees_its_place_under_the_daily_cap(make_registry):
    from socialcredit.policy.load import load_policy, parse_policy

    registry = make_registry(parse_policy(load_policy("nosedive").text.replace("daily_cap = 200", "daily_cap = 1"),
                                          "cap1.toml"))
    _enrol(registry, "rater", "a", "b")
    first = registry.rate("rater", "a", 5, at="2026-05-02T10:00:00Z")
    with pytest.raises(SocialCreditError, match="daily cap of 1"):
        registry.rate("rater", "b", 5, at="2026-05-02T11:00:00Z")
    registry.void(first.entry, "wrong person")
    assert registry.rate("rater", "b", 5, at="2026-05-02T12:00:00Z").accepted == 1


def test_the_daily_cap_follows_local_days_across_a_clock_change(make_registry):
    from socialcredit.policy.load import load_policy, parse_policy

    text_ = load_policy("nosedive").text.replace("daily_cap = 200", "daily_cap = 1").replace(
        'version = "2026.1"', 'version = "2026.1"\ntimezone = "Europe/Berlin"')
    registry = make_registry(parse_policy(text_, "berlin.toml"))
    _enrol(registry, "rater", "a", "b", "c", when="2026-03-01T00:00:00Z")
    # 29 March 2026 in Berlin lasts 23 hours: 00:30 on the 30th is the next day.
    registry.rate("rater", "a", 5, at="2026-03-29T12:00:00+02:00")
    assert registry.rate("rater", "b", 5, at="2026-03-30T00:30:00+02:00").accepted == 1
    # 25 October 2026 lasts 25 hours: 23:30 that evening is still the same day.
    registry.rate("rater", "c", 5, at="2026-10-25T00:30:00+02:00")
    with pytest.raises(SocialCreditError, match="daily cap of 1"):
        registry.rate("rater", "a", 4, interaction="again", at="2026-10-25T23:30:00+01:00")


def test_opting_out_at_the_same_instant_as_opting_in_wins_when_recorded_later(make_registry):
    registry = make_registry("nosedive")
    registry.enrol("ann", at="2026-05-01T00:00:00Z")
    registry.enrol("ann", leave=True, at="2026-05-01T00:00:00Z")
    with pytest.raises(SocialCreditError, match="opted out"):
        registry.rate("ann", "bob", 5, at="2026-05-02T00:00:00Z")


def test_a_dispute_dated_before_the_review_does_not_count(make_registry):
    registry = _peeple(make_registry, "a", "c")
    low = registry.rate("a", "c", 1, category="personal", at="2026-05-02T10:00:00Z").entry
    with pytest.raises(SocialCreditError, match="a response cannot come before it"):
        registry.respond("c", low, dispute="early", at="2026-05-01T00:00:00Z")
    # Sent straight to ingest, the backdated dispute is recorded but does not hold the review.
    registry.ingest([event("c", "peer.review_disputed", "2026-05-01T00:00:00Z", "d1", provider="app", entry=low)])
    assert registry.reviews("c", at="2026-05-06").reviews[0].status == "counts"


def test_providers_cannot_forge_what_the_registry_computes(make_registry):
    registry = make_registry("nosedive")
    result = registry.ingest([event("ann", "peer.trust", "2026-05-01T00:00:00Z", "t", provider="app", value=50)])
    assert result.accepted == 0
    assert "peer.trust is recorded by the registry itself" in result.errors[0].error
