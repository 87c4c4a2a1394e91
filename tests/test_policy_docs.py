"""docs/policies.md says true things: every example parses and does what the guide says.

Each TOML example of the guide is read out of the file (by the generator's own reader),
parsed with `parse_policy`, and its stated effect computed with the reference fold (or,
for ratings, a registry) and compared with the numbers in the prose around it. The
generated parts (docs/policy-reference.md, the lint table, docs/examples/library.toml) must
be current.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socialcredit.cli import app
from socialcredit.errors import SocialCreditError
from socialcredit.ledger.entries import EVENT, Entry
from socialcredit.policy.compiled import EventError
from socialcredit.policy.lint import CODES, lint, summarize
from socialcredit.policy.load import PolicyError, parse_policy
from socialcredit.policy.schema import PolicyDocument
from socialcredit.scoring.fold import fold

from conftest import at
from test_packs import decision  # (allowed, effect) of a check, from the fold

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "policies.md"
ENV = {"SOCIALCREDIT_DB": None, "SOCIALCREDIT_KEY": None, "SOCIALCREDIT_KEY_FILE": None,
       "SOCIALCREDIT_KEY_VERSION": None, "COLUMNS": "1000"}


def _generator():
    spec = importlib.util.spec_from_file_location("generate_policy_docs", ROOT / "docs" / "generate_policy_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = _generator()
TEXT = GUIDE.read_text(encoding="utf-8")
EXAMPLES = generator.examples(TEXT)


def policy(name: str):
    return parse_policy(generator.example_text(EXAMPLES, name), source=f"docs/policies.md example {name}")


def says(name: str, *phrases: str) -> None:
    """The prose that follows example `name` (up to the next example or heading) states each phrase."""
    start = TEXT.index(f'# Example "{name}": ')
    start = TEXT.index("```\n", start) + 4
    ends = [i for i in (TEXT.find("```toml", start), TEXT.find("\n## ", start)) if i >= 0]
    prose = " ".join(TEXT[start:min(ends)].split())
    for phrase in phrases:
        assert phrase in prose, f"docs/policies.md no longer says {phrase!r} after example {name!r}"


def history(p, *events, subject_kind="person"):
    """(type, when, attributes) → ledger entries, the attributes validated as ingest would."""
    return [
        Entry(seq, EVENT, at(when), "s", subject_kind, event_type, at(when), "library", str(seq),
              p.validate_event(event_type, attributes, subject_kind))
        for seq, (event_type, when, attributes) in enumerate(events, start=1)
    ]


def score(p, entries, when) -> float:
    return fold(p, entries, at(when), None, "s").score


LATE_BOOK = ("library.late_return", {"item": "book", "days_late": 2})


# -- the examples themselves -------------------------------------------------------------------


def test_every_toml_block_of_the_guide_is_a_named_example():
    blocks = TEXT.count("```toml")
    assert blocks == len(EXAMPLES) >= 15, 'every ```toml block starts with # Example "NAME": ...'
    for name, (base, _) in EXAMPLES.items():
        assert base is None or base in EXAMPLES, f"example {name} extends an unknown example {base}"


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_example_parses_as_a_policy(name):
    assert policy(name).id


def test_the_library_file_is_the_guides_policy():
    assert parse_policy((ROOT / "docs" / "examples" / "library.toml").read_text(encoding="utf-8")).document \
        == policy("measures").document


# -- what each example does, as the guide says -------------------------------------------------


def test_smallest_policy_two_late_returns_for_a_year():
    p = policy("library")
    entries = history(p, (*LATE_BOOK[:1], "2025-03-03T10:00:00Z", LATE_BOOK[1]),
                      (LATE_BOOK[0], "2025-04-07T10:00:00Z", LATE_BOOK[1]))
    assert score(p, [], "2025-01-01") == 100
    assert score(p, entries, "2025-05-01") == 90
    assert score(p, entries, "2026-04-07T10:00:00Z") == 100  # a year after the second
    says("library", "A reader with no records scores 100", "Two late returns bring the score to 90",
         "back at 100")


def test_a_typo_in_a_key_is_an_error_that_names_the_place():
    text = generator.example_text(EXAMPLES, "library").replace('lifetime = "P1Y"', 'lifteime = "P1Y"')
    with pytest.raises(PolicyError) as error:
        parse_policy(text, source="library.toml")
    assert str(error.value) in " ".join(TEXT.split())


def test_catalogue_accepts_text_numbers_and_refuses_what_it_does_not_know():
    p = policy("catalogue")
    assert p.validate_event("library.late_return", {"item": "laptop", "days_late": "3"}, "person") == \
        {"item": "laptop", "days_late": 3}
    refusals = [
        ("library.late_return", {"item": "umbrella", "days_late": 3}, "person"),
        ("library.fine_unpaid", {"amount": 2}, "person"),
        ("library.late_return", {"item": "book", "days_late": 3}, "organization"),
    ]
    messages = []
    for event_type, attributes, kind in refusals:
        with pytest.raises(EventError) as error:
            p.validate_event(event_type, attributes, kind)
        messages.append(str(error.value))
    says("catalogue", '"3" becomes the number 3', messages[0], messages[1], "about an organization")
    assert messages[2] == "library.late_return does not apply to a subject of kind organization"


def test_dimensions_weights_multiply_a_dimensions_points():
    p = policy("dimensions")
    entries = history(p, (LATE_BOOK[0], "2025-03-03", LATE_BOOK[1]), ("library.volunteered", "2025-03-04", {}))
    assert score(p, entries, "2025-03-05") == 101
    says("dimensions", "100 − 5 + 2 × 3 = 101")


def test_latest_dimension_keeps_the_newest_value_for_its_lifetime():
    p = policy("latest")
    entries = history(p, ("library.reading_challenge", "2024-09-15", {"books": 12}),
                      ("library.reading_challenge", "2025-09-15", {"books": 30}))
    assert score(p, entries, "2025-10-01") == 115
    assert score(p, entries, "2026-09-15") == 100
    says("latest", "12 books in September 2024 and 30 in September 2025", "100 + 0.5 × 30 = 115",
         "the score is 100")


def test_match_every_fitting_rule_applies():
    p = policy("match")
    laptop = history(p, ("library.late_return", "2025-03-03", {"item": "laptop", "days_late": 1}))
    book = history(p, ("library.late_return", "2025-03-03", {"item": "book", "days_late": 1}))
    assert score(p, laptop, "2025-03-04") == 80 and score(p, book, "2025-03-04") == 95
    assert score(p, laptop, "2026-03-04") == 85  # the 5 expired after a year, the 15 count on
    assert score(p, laptop, "2027-03-04") == 100
    says("match", "A late laptop now costs 20 points", "a late book still costs 5",
         "its 15 count for one more year")


def test_half_life_halves_the_points_every_half_life():
    p = policy("half-life")
    entries = history(p, ("library.donation", "2025-03-01", {}))
    assert [score(p, entries, day) for day in ("2025-03-01", "2025-03-31", "2025-04-30")] == [108, 104, 102]
    assert fold(p, entries, at("2025-03-31"), None, "s").cacheable is False
    says("half-life", "the reader scores 108, 30 days later 104, 60 days later 102")


def test_cap_counts_per_calendar_month_in_the_policys_zone():
    p = policy("cap")
    shifts = ["2025-03-03T10:00:00Z", "2025-03-10T10:00:00Z", "2025-03-17T10:00:00Z", "2025-03-31T22:30:00Z"]
    entries = history(p, *[("library.shelving_shift", when, {}) for when in shifts])
    standing = fold(p, entries, at("2025-04-02"), None, "s")
    assert [c.status for c in standing.contributions] == ["counts", "counts", "capped", "counts"]
    assert score(p, entries[:3], "2025-03-31") == 104 and standing.score == 106
    says("cap", "Shifts on 3, 10 and 17 March 2025 give +4, not +6", "22:30 UTC on 31 March is on 1 April in Berlin",
         "the reader scores 106")


def test_score_cap_only_lowers():
    p = policy("score-cap")
    damaged = ("library.laptop_damaged", "2025-03-01", {})
    assert score(p, history(p, damaged), "2025-03-02") == 80
    assert score(p, history(p, damaged), "2027-03-01") == 100
    six_late = [(LATE_BOOK[0], f"2025-02-{day:02d}", LATE_BOOK[1]) for day in range(1, 7)]
    assert score(p, history(p, *six_late), "2025-03-02") == 70
    assert score(p, history(p, *six_late, damaged), "2025-03-02") == 70
    says("score-cap", "drops from 100 to 80 and is held there for two years", "already fallen to 70 stays at 70")


def test_weighted_combine_positions_in_clamped_sub_scores():
    p = policy("weighted")
    late = [("library.late_return", f"2025-03-{day:02d}", {}) for day in range(1, 9)]
    assert score(p, [], "2025-04-01") == 500
    assert score(p, history(p, *late[:1]), "2025-04-01") == 425
    assert [score(p, history(p, *late[:n]), "2025-04-01") for n in (5, 6, 8)] == [125, 125, 125]
    assert score(p, history(p, *late[:4]), "2025-04-01") == 200  # the clamp is reached at the fifth
    says("weighted", "scores 500", "1000 × (3 × 0.4 + 1 × 0.5) / 4 = 425", "six or more score 125")


def test_tiers_are_top_down_and_any_other_order_is_refused():
    p = policy("tiers")
    lates = [(LATE_BOOK[0], f"2025-03-0{day}", LATE_BOOK[1]) for day in (1, 2, 3)]
    assert [fold(p, history(p, *lates[:n]), at("2025-03-05"), None, "s").tier for n in (0, 2, 3)] == \
        ["standard", "standard", "restricted"]
    swapped = generator.example_text(EXAMPLES, "tiers").replace("min = 120", "min = 80")
    with pytest.raises(PolicyError, match="tiers must be listed from the highest `min` down"):
        parse_policy(swapped)
    says("tiers", "A reader at 100 is `standard`", "a third takes them to 85 and `restricted`")


def test_lists_one_listing_per_case_and_points_that_last_with_it():
    p = policy("lists")
    entries = history(p, ("library.fine_unpaid", "2025-03-05T09:00:00Z", {"invoice": "F-17"}),
                      ("library.fine_unpaid", "2025-03-06T09:00:00Z", {"invoice": "F-18"}),
                      ("library.fine_paid", "2025-04-01T09:00:00Z", {"invoice": "F-17"}))
    before = fold(p, entries, at("2025-03-20"), None, "s")
    assert sorted(s.case for s in before.active_lists) == ["F-17", "F-18"] and before.score == 80
    paid = fold(p, entries, at("2025-04-02"), None, "s")
    assert [s.case for s in paid.active_lists] == ["F-18"] and paid.score == 80
    assert score(p, entries, "2025-06-30") == 80 and score(p, entries, "2025-07-02") == 90
    says("lists", "listed twice and scores 80", "scores 80 until then and 90 after")


def test_ban_term_refused_early_exit_extensions_capped_by_max_total():
    p = policy("ban")
    case = {"decision": "B-3"}
    entries = history(p, ("library.ban_imposed", "2025-03-01T10:00:00Z", case),
                      ("library.ban_lifted", "2025-05-01T10:00:00Z", case),
                      ("library.ban_extended", "2025-08-01T10:00:00Z", {**case, "months": 4}),
                      ("library.ban_extended", "2025-12-01T10:00:00Z", {**case, "months": 6}),
                      ("library.ban_lifted", "2026-01-15T10:00:00Z", case))

    def ban_until(when):
        (spell,) = fold(p, entries, at(when), None, "s").spells
        return spell.until_us

    # Six months on Berlin's calendar: 11:00 on 1 March (winter time) to 11:00 on 1 September
    # (summer time), which is 09:00 UTC.
    assert ban_until("2025-04-01") == at("2025-09-01T09:00:00Z")
    assert fold(p, entries, at("2025-06-01"), None, "s").spells[0].refused_exits == [2]
    assert ban_until("2025-08-15") == at("2026-01-01T10:00:00Z")
    assert ban_until("2025-12-15") == at("2026-03-01T10:00:00Z")
    assert ban_until("2026-02-01") == at("2026-01-15T10:00:00Z")
    says("ban", "runs until 1 September 2025", "on 1 May 2025, two months in, is refused",
         "runs until 1 January 2026", "stops it at 1 March 2026", "Lifted on appeal on 15 January 2026, it ends that day")


def test_measures_hierarchical_services_duration_deny_wins_and_unless_list():
    p = policy("measures")
    ban = ("library.ban_imposed", "2025-03-01T10:00:00Z", {"decision": "B-3"})
    banned = history(p, ban)
    assert decision(p, banned, "2025-03-10", "library.borrow") == (False, "deny")
    assert decision(p, banned, "2025-03-10", "library.borrow.laptop") == (False, "deny")
    assert decision(p, banned, "2025-03-10", "library.printing") == (True, "allow")

    fined = history(p, ("library.fine_unpaid", "2025-03-03T09:00:00Z", {"invoice": "F-17"}))
    assert decision(p, fined, "2025-04-02T08:59:59Z", "library.borrow.laptop") == (False, "deny")
    assert decision(p, fined, "2025-04-02T09:00:00Z", "library.borrow.laptop") == (True, "allow")
    assert decision(p, fined, "2025-03-10", "library.borrow") == (True, "allow")  # 90 is not below 90

    twice = history(p, ("library.fine_unpaid", "2025-03-03T09:00:00Z", {"invoice": "F-17"}),
                    ("library.fine_unpaid", "2025-03-04T09:00:00Z", {"invoice": "F-18"}))
    assert score(p, twice, "2025-03-10") == 80
    assert decision(p, twice, "2025-03-10", "library.borrow") == (True, "deposit_required")
    assert decision(p, twice, "2025-03-10", "library.borrow.laptop") == (False, "deny")

    banned_at_80 = history(p, ("library.fine_unpaid", "2025-03-03T09:00:00Z", {"invoice": "F-17"}),
                           ("library.fine_unpaid", "2025-03-04T09:00:00Z", {"invoice": "F-18"}), ban)
    measures = {m.id for m in fold(p, banned_at_80, at("2025-03-10"), None, "s").measures}
    assert "deposit-below-90" not in measures and "banned-no-borrowing" in measures
    says("measures", "is denied `library.borrow` and `library.borrow.laptop`", "but not `library.printing`",
         "unpaid on 3 March 2025 is denied a laptop until 2 April 2025", "since 90 points is not below 90",
         "they score 80: books need a deposit (allowed, effect `deposit_required`)",
         "is denied, not asked for a deposit")


# -- ratings: weights and holds are fixed by the registry at ingest ----------------------------


def _swap_club(make_registry, example):
    registry = make_registry(policy(example))
    for member in ("ada", "bob", "cy", "dee", "eve", "fay"):
        registry.enrol(member, at="2025-05-01T08:00:00Z", attributes={"card": f"C-{member}"})
    return registry


def test_book_swap_prior_mean_hold_dispute_consent_and_daily_cap(make_registry):
    registry = _swap_club(make_registry, "book-swap")

    def stands(who, when):
        return registry.standing(who, at=when).score

    assert stands("ada", "2025-05-02") == 3
    registry.rate("bob", "ada", 5, interaction="swap-1", at="2025-05-02T10:00:00Z")
    registry.rate("cy", "ada", 5, interaction="swap-2", at="2025-05-02T11:00:00Z")
    assert stands("ada", "2025-05-02T12:00:00Z") == 4
    registry.rate("dee", "ada", 1, interaction="swap-3", at="2025-05-03T10:00:00Z")
    assert stands("ada", "2025-05-05T09:59:59Z") == 4  # held for 48 hours
    assert stands("ada", "2025-05-05T10:00:00Z") == 3.4

    registry.rate("ada", "bob", 5, interaction="swap-1", at="2025-05-02T10:00:00Z")
    registry.rate("ada", "bob", 5, interaction="swap-2", at="2025-05-02T11:00:00Z")
    held = registry.rate("dee", "bob", 1, interaction="swap-3", at="2025-05-03T10:00:00Z")
    registry.respond("bob", held.entry, dispute="we never swapped", at="2025-05-04T10:00:00Z")
    assert stands("bob", "2025-05-06") == 4  # disputed in time: it never counts

    with pytest.raises(SocialCreditError, match="the rated subject has not consented to be rated"):
        registry.rate("ada", "stranger", 4, interaction="swap-9", at="2025-05-02T10:00:00Z")
    for n in range(5):
        registry.rate("eve", ["ada", "bob", "cy", "dee"][n % 4], 4, interaction=f"cap-{n}", at="2025-05-06T10:00:00Z")
    with pytest.raises(SocialCreditError, match="daily cap of 5"):
        registry.rate("eve", "cy", 4, interaction="cap-6", at="2025-05-06T11:00:00Z")
    says("book-swap", "stands at 3.00", "(3 × 2 + 5 + 5) / 4 = 4.00", "still stands at 4.00",
         "(3 × 2 + 5 + 5 + 1) / 5 = 3.40", "unless the member disputes it in time",
         "the rated subject has not consented to be rated", "a member's sixth rating of the day",
         "`socialcredit enrol ada --attribute card=C-1024`")


def test_book_swap_enrol_names_the_card_an_opt_in_needs(tmp_path):
    path = tmp_path / "book-swap.toml"
    path.write_text(generator.example_text(EXAMPLES, "book-swap"), encoding="utf-8")
    env = {**ENV, "SOCIALCREDIT_DB": f"sqlite:///{tmp_path}/club.db"}
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--policy", str(path)], env=env).exit_code == 0
    missing = runner.invoke(app, ["enrol", "ada", "--at", "2025-05-01"], env=env)
    assert missing.exit_code == 2 and "requires card" in missing.stderr and "--attribute card=" in missing.stderr
    joined = runner.invoke(app, ["enrol", "ada", "--attribute", "card=C-1024", "--at", "2025-05-01"], env=env)
    assert joined.exit_code == 0, joined.output
    says("book-swap", "without it, `enrol` says which attribute is missing")


def test_rater_weight_buckets_and_positivity(make_registry):
    registry = _swap_club(make_registry, "rater-weight")

    def weight_of(ratee, rating):
        (review,) = [r for r in registry.reviews(ratee, at="2025-06-01").reviews if r.entry == rating.entry]
        return review.weight

    first = registry.rate("bob", "ada", 5, interaction="w-1", at="2025-05-02T10:00:00Z")
    assert weight_of("ada", first) == 0.5  # bob stands at 3.00: the bucket from 1
    # Four newcomers' 5-star ratings (0.5 each) lift cy to (3 × 2 + 4 × 0.5 × 5) / (2 + 4 × 0.5) = 4.
    registry.rate("dee", "cy", 5, interaction="w-2", at="2025-05-02T10:00:00Z")
    registry.rate("eve", "cy", 5, interaction="w-3", at="2025-05-02T10:00:00Z")
    registry.rate("ada", "cy", 5, interaction="w-4", at="2025-05-02T10:00:00Z")
    registry.rate("bob", "cy", 5, interaction="w-5", at="2025-05-02T10:00:00Z")
    assert registry.standing("cy", at="2025-05-03").score == 4
    heavy = registry.rate("cy", "dee", 5, interaction="w-6", at="2025-05-03T10:00:00Z")
    assert weight_of("dee", heavy) == 2
    for n in range(3):  # fay, a newcomer, gives three negative reviews...
        registry.rate("fay", ["ada", "bob", "dee"][n], 1, interaction=f"neg-{n}", at="2025-05-04T10:00:00Z")
    sour = registry.rate("fay", "bob", 4, interaction="w-7", at="2025-05-05T10:00:00Z")  # ...then this one
    assert weight_of("bob", sour) == pytest.approx(0.5 * 0.2 / 0.5)
    says("rater-weight", "A newcomer's rating (3.00) now weighs 0.5", "by a member at 4.00 weighs 2",
         "A newcomer whose three earlier ratings were all negative",
         "(0 + 1) / (3 + 2) = 0.2", "weighs 0.5 × 0.2 / 0.5 = 0.2")


# -- the linter, as the guide describes it -----------------------------------------------------


def _codes(p) -> list[tuple[str, str]]:
    return sorted((f.code, f.subject) for f in lint(p))


def test_lint_findings_of_the_library_and_the_lint_examples():
    assert _codes(policy("measures")) == [("aggregate-score-only", "measure 'deposit-below-90'"),
                                          ("open-ended-listing", "list 'unpaid-fines'")]
    assert summarize(lint(policy("measures"))) == {"error": 0, "warning": 1, "info": 1}
    added = sorted(set(_codes(policy("lint-cross-context"))) - set(_codes(policy("measures"))))
    assert added == [("cross-context", "measure 'no-bus-pass'"), ("no-legal-basis", "measure 'no-bus-pass'"),
                     ("no-remedy", "measure 'no-bus-pass'")]
    protected = [f for f in lint(policy("lint-protected")) if f.severity == "error"]
    assert [(f.code, f.subject) for f in protected] == [("protected-attribute", "event type 'library.prayer_room_booked'")]
    text = " ".join(TEXT.split())
    assert "The deposit below 90 points is `aggregate-score-only` (warning)" in text
    assert "The list of unpaid fines is an `open-ended-listing` (info)" in text
    says("lint-cross-context", "It is `cross-context` (warning)", "(`no-legal-basis`, warning)", "(`no-remedy`, info)")
    says("lint-protected", "This is a `protected-attribute` error", "`policy lint` exits 1",
         "`init --policy` refuses it")


def test_policy_lint_exits_1_on_the_protected_example_and_init_refuses_it(tmp_path):
    runner = CliRunner()
    for name, code in (("lint-protected", 1), ("measures", 0)):
        path = tmp_path / f"{name}.toml"
        path.write_text(generator.example_text(EXAMPLES, name), encoding="utf-8")
        result = runner.invoke(app, ["policy", "lint", str(path)], env=ENV)
        assert result.exit_code == code, result.output
        init = runner.invoke(app, ["--db", f"sqlite:///{tmp_path}/{name}.db", "init", "--policy", str(path)], env=ENV)
        assert init.exit_code == (2 if code else 0), init.output
    assert "`init --policy` and `policy activate` refuse a policy with errors unless given `--force --reason TEXT`" \
        in " ".join(TEXT.split())


def test_the_guides_lint_table_names_every_code_with_its_severity():
    table = TEXT[TEXT.index(generator.BEGIN):TEXT.index(generator.END)]
    rows = re.findall(r"^\| `([a-z-]+)` \| (error|warning|info) \|", table, re.M)
    assert rows == [(code, meaning.severity) for code, meaning in CODES.items()]


# -- trying a policy, through the CLI, as section 11 shows ----------------------------------


def test_trying_the_library_policy_through_the_cli(tmp_path):
    runner = CliRunner()
    env = {**ENV, "SOCIALCREDIT_DB": f"sqlite:///{tmp_path}/library.db"}  # as the guide sets it
    events = re.search(r"<!-- events: library -->\n```jsonl\n(.*?)```", TEXT, re.S)[1]
    (tmp_path / "events.jsonl").write_text(events, encoding="utf-8")
    library = str(ROOT / "docs" / "examples" / "library.toml")

    def run(*args, code=0):
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == code, (args, result.output, result.exception)
        return result.stdout

    assert "library 1" in run("init", "--policy", library)
    assert json.loads(run("ingest", str(tmp_path / "events.jsonl"), "--json"))["accepted"] == 3
    standing = run("standing", "ada", "--at", "2025-03-10")
    assert standing.startswith("Score 75")
    assert "Listed on unpaid-fines (case F-17)" in standing and "Listed on unpaid-fines (case F-18)" in standing
    explained = run("explain", "ada", "--at", "2025-03-10")
    assert "−10 points (an unpaid fine)" in explained
    checked = run("check", "ada", "library.borrow.laptop", "--at", "2025-03-10", code=3)
    assert checked.startswith("DENIED library.borrow.laptop")
    assert "No laptop loans in the 30 days after a fine goes unpaid." in checked
    text = " ".join(TEXT.split())
    for shown in ("On 10 March 2025 Ada scores 75", '"DENIED library.borrow.laptop"', "exits 3",
                  "export SOCIALCREDIT_DB=sqlite:///library.db",
                  "socialcredit init --policy docs/examples/library.toml"):
        assert shown in text


# -- the generated parts are current; the guide reads in 80 columns ---------------------------


@pytest.mark.parametrize("target", ["policy-reference.md", "policies.md", "examples/library.toml"])
def test_generated_policy_docs_are_up_to_date(target):
    guide = GUIDE.read_text(encoding="utf-8")
    expected = {"policy-reference.md": generator.render_reference() + "\n",
                "policies.md": generator.render_guide(guide),
                "examples/library.toml": generator.render_library(guide)}[target]
    path = ROOT / "docs" / target
    assert path.exists() and path.read_text(encoding="utf-8") == expected, (
        f"docs/{target} is stale: {generator.REGENERATE}")


def test_the_check_mode_exits_1_and_says_how_to_regenerate_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "policy-reference.md"
    stale.write_text("# old\n", encoding="utf-8")
    monkeypatch.setattr(generator, "REFERENCE", stale)
    assert generator.main(["--check"]) == 1
    assert capsys.readouterr().err == f"{stale} is out of date: {generator.REGENERATE}\n"


def _models(model, seen=None):
    seen = seen if seen is not None else []
    if model not in seen:
        seen.append(model)
        for field in model.model_fields.values():
            inner = generator._model_of(field.annotation)
            if inner is not None:
                _models(inner, seen)
    return seen


def test_every_schema_field_has_a_description_and_is_in_the_reference():
    reference = (ROOT / "docs" / "policy-reference.md").read_text(encoding="utf-8")
    for model in _models(PolicyDocument):
        header = "(top level)" if model is PolicyDocument else generator.table_headers()[model]
        section = reference.split(f"## `{header}`\n", 1)[1].split("\n## ", 1)[0]
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no Field(description=...)"
            assert f"- `{name}`: " in section, f"{header} {name} is missing from docs/policy-reference.md"


def test_reference_types_and_defaults_read_as_words():
    reference = " ".join((ROOT / "docs" / "policy-reference.md").read_text(encoding="utf-8").split())
    for entry in ("`lifetime`: duration; optional.", "`id`: identifier; required.",
                  "`count`: integer; at least 1; required.", "`combine`: one of `\"sum\"`, `\"weighted\"`; default `\"sum\"`.",
                  "`enter`: list of tables `[[lists.enter]]`; at least 1 entry; required.",
                  "`service`: service name; required.", "`trust_teleport`: number; more than 0; less than 1; default `0.15`."):
        assert entry in reference, entry


def _prose_lines(text: str) -> list[str]:
    """The lines of a Markdown file outside code blocks, tables and HTML comments."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and not line.startswith(("|", "<!--")):
            lines.append(line)
    return lines


@pytest.mark.parametrize("name", ["policies.md", "policy-reference.md"])
def test_the_policy_docs_read_in_80_columns(name):
    long = [line for line in _prose_lines((ROOT / "docs" / name).read_text(encoding="utf-8")) if len(line) > 80]
    assert not long, f"docs/{name} has prose lines over 80 columns: {long[:3]}"
