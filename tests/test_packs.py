"""The shipped policy packs reproduce the public figures they cite (values, not just loading),
and cite nothing a reader of the repository cannot open."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from socialcredit.scoring.decide import decide
from socialcredit.ledger.entries import EVENT, Entry
from socialcredit.intake.identity import make_uscc
from socialcredit.policy.load import load_policy, pack_names
from socialcredit.scoring.compact import compact
from socialcredit.scoring.fold import fold

from conftest import at


def entries(*specs):
    return [
        Entry(seq, EVENT, at(when), "s", kind, event_type, at(when), "p", str(seq), attributes)
        for seq, (event_type, when, attributes, kind) in enumerate(
            (spec if len(spec) == 4 else (*spec, "person") for spec in specs), start=1)
    ]


def decision(policy, history, when, service):
    standing = fold(policy, history, at(when), None, "s")
    active = compact(standing).measures
    return decide(policy, active, service)[:2]


def test_packs_are_shipped_and_selectable_by_name():
    assert {"rongcheng", "china-judgment-defaulters", "sesame"} <= set(pack_names())
    for name in pack_names():
        policy = load_policy(name)
        assert policy.id == name
        assert policy.document.policy.sources, f"{name} names no sources"


# -- what the packs cite ----------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
# A file named in prose (`SYSTEMS.md`, `notes/research.txt`) or a folder (`seed/`); not a URL.
_FILE = re.compile(r"(?<![\w./:-])((?:[\w-]+/)*[\w-]+\.(?:md|txt|rst|csv|tsv|jsonl?|toml|ya?ml|py|pdf|html?|xlsx?|docx?))\b",
                   re.IGNORECASE)
_FOLDER = re.compile(r"(?<![\w./:-])((?:[\w.-]+/)+)(?=[\s,;:)\]'\"]|$)")


def named_paths(text: str) -> list[str]:
    return [*_FILE.findall(text), *_FOLDER.findall(text)]


def _repository_paths() -> set[str]:
    """Every file and folder of the checkout, relative to its root (tooling folders aside)."""
    found: set[str] = set()
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d != "__pycache__"
                         and not d.endswith(".egg-info")]
        relative = Path(folder).relative_to(ROOT)
        found.update(str(relative / name) for name in (*subfolders, *files))
    return found


def _in_repository(path: str, paths: set[str]) -> bool:
    path = path.rstrip("/")
    return any(candidate == path or candidate.endswith("/" + path) for candidate in paths)


@pytest.mark.parametrize("text, paths", [
    ("Sources: the project's research notes (SYSTEMS.md, section 1)", ["SYSTEMS.md"]),
    ("# see notes/research.txt and the seed/ folder", ["notes/research.txt", "seed/"]),
    ("Wired, 2017; 35/20/25/15/5; positivity 1/2; https://example.org/report.pdf", []),
])
def test_named_paths_finds_files_and_folders_but_not_urls_or_ratios(text, paths):
    assert named_paths(text) == paths


@pytest.mark.parametrize("name", pack_names())
def test_no_pack_cites_a_file_that_is_not_in_the_repository(name):
    repository = _repository_paths()
    # The whole text: header comments, `sources`, approximations and every other string.
    missing = [path for path in named_paths(load_policy(name).text) if not _in_repository(path, repository)]
    assert not missing, f"the {name} pack cites {', '.join(sorted(set(missing)))}, not in the repository"


def test_the_architecture_page_names_every_pack():
    row = next(line for line in (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| `policy/` |"))
    packs = re.search(r"`packs/` \(([^)]*)\)", row)[1].split(", ")
    assert sorted(packs) == pack_names()


# -- Rongcheng ---------------------------------------------------------------------------------

rongcheng = load_policy("rongcheng")

DEDUCTIONS = {
    "finance.bank_arrears": -10,
    "finance.contract_breach": -20,
    "court.breach_judgment": -50,
    "finance.private_lending_breach": -20,
    "finance.illegal_fundraising": -40,
    "court.debt_liability": -30,
    "commerce.fraud": -30,
    "commerce.counterfeit_goods": -30,
    "utility.late_payment": -20,
    "court.utility_arrears": -50,
    "utility.heating_tapping": -50,
    "utility.theft": -60,
    "utility.equipment_damage": -100,
    "traffic.violation": -5,
    "civic.heroic_act": 30,
}
REQUIRED_ATTRIBUTES = {"court.breach_judgment": {"case_id": "x"}, "court.debt_liability": {"case_id": "x"},
                       "court.utility_arrears": {"case_id": "x"}}


@pytest.mark.parametrize("event_type, points", sorted(DEDUCTIONS.items()))
def test_rongcheng_points_per_event(event_type, points):
    history = entries((event_type, "2026-01-10T00:00:00Z", REQUIRED_ATTRIBUTES.get(event_type, {})))
    standing = fold(rongcheng, history, at("2026-02-01"), None, "s")
    assert standing.score == 1000 + points


def test_rongcheng_small_civic_additions_and_their_caps():
    history = entries(*[("civic.volunteering", f"2026-03-{d:02d}T00:00:00Z", {}) for d in (1, 2, 3)],
                      ("civic.blood_donation", "2026-03-05T00:00:00Z", {}))
    standing = fold(rongcheng, history, at("2026-04-01"), None, "s")
    assert standing.score == 1000 + 5 + 5 + 10  # only two volunteering records a month count


def test_rongcheng_grades():
    cut_offs = [(1050, "AAA"), (1049, "AA"), (1030, "AA"), (1029, "A"), (960, "A"), (959, "B"),
                (850, "B"), (849, "C"), (600, "C"), (599, "D"), (0, "D")]
    assert [(score, rongcheng.tier_for(score)) for score, _ in cut_offs] == cut_offs


def test_rongcheng_points_count_in_full_for_at_least_a_year_without_decay():
    for rule in rongcheng.rules:
        assert rule.half_life_us is None
        assert rule.lifetime.months >= 12, rule.id
    history = entries(("traffic.violation", "2026-01-10T00:00:00Z", {}))
    assert fold(rongcheng, history, at("2027-01-09"), None, "s").score == 995
    assert fold(rongcheng, history, at("2027-01-10"), None, "s").score == 1000


def test_rongcheng_drunk_driving_holds_the_score_inside_grade_c():
    heroic = [("civic.heroic_act", f"2026-0{m}-01T00:00:00Z", {}) for m in (1, 2)]
    history = entries(*heroic, ("traffic.drunk_driving", "2026-03-01T00:00:00Z", {}))
    standing = fold(rongcheng, history, at("2026-04-01"), None, "s")
    assert (standing.score, standing.tier) == (849, "C")
    worse = entries(*[("utility.equipment_damage", f"2026-0{m}-01T00:00:00Z", {}) for m in (1, 2, 3, 4, 5)],
                    ("traffic.drunk_driving", "2026-06-01T00:00:00Z", {}))
    assert fold(rongcheng, worse, at("2026-07-01"), None, "s").score == 500  # already lower: stays


def test_rongcheng_perks_for_grade_a_and_above():
    clean = entries()
    assert decision(rongcheng, clean, "2026-01-01", "utility.heating") == (True, "discount")
    assert decision(rongcheng, clean, "2026-01-01", "transport.bike_share") == (True, "deposit_free")
    grade_b = entries(("utility.equipment_damage", "2026-01-01T00:00:00Z", {}))
    assert decision(rongcheng, grade_b, "2026-02-01", "utility.heating") == (True, "allow")
    assert decision(rongcheng, grade_b, "2026-02-01", "transport.bike_share") == (True, "allow")


def test_rongcheng_low_grades_lose_bank_credit():
    grade_c = entries(("traffic.drunk_driving", "2026-01-01T00:00:00Z", {}))
    assert decision(rongcheng, grade_c, "2026-02-01", "finance.loan") == (False, "deny")
    assert decision(rongcheng, grade_c, "2026-02-01", "public.inspection") == (True, "extra_inspection")


# -- China: judgment defaulters ----------------------------------------------------------------

china = load_policy("china-judgment-defaulters")
DENIED = ["transport.air", "transport.rail.high_speed", "transport.rail.sleeper", "hospitality.star_hotel",
          "property.purchase", "education.private_school", "finance.premium_insurance", "travel.leisure",
          "employment.civil_service"]
TRIGGERS = ["refuses_to_pay", "obstruction", "fake_litigation", "asset_reporting", "spending_order",
            "settlement_refusal"]


def _listing(trigger="refuses_to_pay", case="(2026)01", when="2026-01-01T00:00:00Z", kind="person"):
    return ("court.judgment_unfulfilled", when, {"case_id": case, "trigger": trigger}, kind)


@pytest.mark.parametrize("service", DENIED)
def test_china_listed_subjects_are_denied(service):
    history = entries(_listing())
    assert decision(china, history, "2026-02-01", service) == (False, "deny")
    assert decision(china, entries(), "2026-02-01", service) == (True, "allow")


def test_china_regular_rail_stays_allowed():
    history = entries(_listing())
    assert decision(china, history, "2026-02-01", "transport.rail.regular") == (True, "allow")


def test_china_fulfilled_judgment_lifts_the_listing_for_that_case_only():
    history = entries(_listing(case="A"), _listing(case="B", when="2026-01-02T00:00:00Z"),
                      ("court.judgment_fulfilled", "2026-03-01T00:00:00Z", {"case_id": "A"}))
    assert decision(china, history, "2026-04-01", "transport.air") == (False, "deny")
    history.append(Entry(4, EVENT, at("2026-05-01"), "s", "person", "court.judgment_fulfilled", at("2026-05-01"),
                         "p", "4", {"case_id": "B"}))
    assert decision(china, history, "2026-06-01", "transport.air") == (True, "allow")


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_china_terms_by_trigger(trigger):
    history = entries(_listing(trigger=trigger))
    still = decision(china, history, "2029-01-01", "transport.air")
    if trigger == "refuses_to_pay":
        assert still == (False, "deny")  # until the debt is paid
    else:
        assert decision(china, history, "2027-12-31", "transport.air") == (False, "deny")
        assert still == (True, "allow")  # two years are over


def test_china_extension_is_capped_at_five_years():
    history = entries(_listing(trigger="obstruction"),
                      ("court.listing_extended", "2027-06-01T00:00:00Z", {"case_id": "(2026)01", "years": 3}),
                      ("court.listing_extended", "2027-07-01T00:00:00Z", {"case_id": "(2026)01", "years": 3}))
    standing = fold(china, history, at("2028-01-01"), None, "s")
    assert standing.active_lists[0].until_us == at("2031-01-01")


def test_china_railway_list_lasts_180_days_and_covers_all_rail():
    history = entries(("rail.serious_misconduct", "2026-01-01T00:00:00Z", {"misconduct": "fare_evasion"}))
    assert decision(china, history, "2026-06-29", "transport.rail.regular") == (False, "deny")
    assert decision(china, history, "2026-06-30", "transport.rail.regular") == (True, "allow")  # day 180
    assert decision(china, history, "2026-02-01", "transport.air") == (True, "allow")


def test_china_organizations_can_be_listed():
    code = make_uscc("91350100M000100Y4")
    assert code == "91350100M000100Y43"
    history = entries(_listing(kind="organization"))
    assert decision(china, history, "2026-02-01", "transport.air") == (False, "deny")
    assert "organization" in china.event_types["court.judgment_unfulfilled"].subject_kinds


# -- Sesame ------------------------------------------------------------------------------------

sesame = load_policy("sesame")


def test_sesame_scale_and_dimensions():
    assert (sesame.scale.min, sesame.scale.max, sesame.scale.combine) == (350, 950, "weighted")
    weights = {d.id: d.weight for d in sesame.dimensions}
    assert weights == {"credit_history": 0.35, "behaviour": 0.20, "capacity": 0.25, "identity": 0.15,
                       "relationships": 0.05}
    newcomer = fold(sesame, [], at("2026-01-01"), None, "s")
    assert 550 <= newcomer.score < 600


@pytest.mark.parametrize("threshold, service, effect", [
    (600, "transport.bike_share", "deposit_free"),
    (650, "rental.car", "deposit_free"),
    (700, "rental.goods", "deposit_free"),
    (700, "travel.visa", "fast_track"),
])
def test_sesame_thresholds(threshold, service, effect):
    measure = next(m for m in sesame.measures if m.service == service and m.effect == effect)
    assert (measure.kind, measure.threshold) == ("score_at_least", threshold)


def test_sesame_perks_follow_the_score():
    verified = [("identity.phone_verified", "2026-01-01T00:00:00Z", {}),
                ("identity.address_verified", "2026-01-02T00:00:00Z", {}),
                ("capacity.income_verified", "2026-01-03T00:00:00Z", {}),
                ("capacity.asset_verified", "2026-01-04T00:00:00Z", {})]
    standing = fold(sesame, entries(*verified), at("2026-02-01"), None, "s")
    assert 600 <= standing.score < 650
    assert decision(sesame, entries(*verified), "2026-02-01", "transport.bike_share") == (True, "deposit_free")
    assert decision(sesame, entries(*verified), "2026-02-01", "rental.car") == (True, "allow")


def test_sesame_court_listing_lowers_the_score_and_bans_until_fulfilled():
    base = fold(sesame, [], at("2026-02-01"), None, "s").score
    listed = entries(_listing())
    assert fold(sesame, listed, at("2026-02-01"), None, "s").score < base
    for service in ("commerce.luxury", "travel.leisure", "hospitality.star_hotel", "rental.car"):
        assert decision(sesame, listed, "2026-02-01", service) == (False, "deny")
    paid = entries(_listing(), ("court.judgment_fulfilled", "2026-06-01T00:00:00Z", {"case_id": "(2026)01"}))
    assert decision(sesame, paid, "2026-07-01", "rental.car") == (True, "allow")
    # The mark stays five years after payment.
    assert fold(sesame, paid, at("2031-05-31"), None, "s").score < base
    assert fold(sesame, paid, at("2031-06-01"), None, "s").score == base


def test_rongcheng_counts_calendar_months_in_china_time():
    # 00:00 on 1 March in Rongcheng is still February in UTC: the monthly cap is Chinese.
    history = entries(("finance.bank_arrears", "2026-03-01T00:00:00+08:00", {}),
                      ("finance.bank_arrears", "2026-03-20T00:00:00+08:00", {}))
    standing = fold(rongcheng, history, at("2026-04-01"), None, "s")
    assert standing.score == 990
    assert [c.status for c in standing.contributions] == ["counts", "capped"]
    from socialcredit.scoring.explain import summarize

    assert "(record #1, 2026-03-01)" in summarize(standing)["reasons"][0]["text"]


def test_sesame_reasons_name_the_sub_score_and_rank_by_effect_on_the_score():
    from socialcredit.scoring.explain import summarize

    history = entries(("capacity.income_verified", "2026-01-03T00:00:00Z", {}),
                      ("identity.phone_verified", "2026-01-04T00:00:00Z", {}))
    reasons = summarize(fold(sesame, history, at("2026-02-01"), None, "s"))["reasons"]
    # +15 on capacity (weight 0.25) moves the score 15 × 0.25 × 600 / 100 = 22.5; +15 on identity (0.15) 13.5.
    assert reasons[0]["text"].startswith("+15 points on fulfilment capacity (about +22.5 on the score)")
    assert "(about +13.5 on the score)" in reasons[1]["text"]
