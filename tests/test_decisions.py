"""Decisions: logged with what they saw, replayable to the same answer, reasons bounded."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from socialcredit.policy.load import load_policy

from conftest import allow_tampering, at, behind_its_back, event
from socialcredit.results import Verdict


def _listed(case="2025-001", when="2026-03-01T00:00:00Z", trigger="refuses_to_pay", key=1, who="11010519491231002X"):
    return event(who, "court.judgment_unfulfilled", when, key, provider="court", case_id=case, trigger=trigger)


def test_check_denies_a_listed_person_and_allows_regular_rail(make_registry):
    registry = make_registry("china-judgment-defaulters")
    registry.ingest([_listed()])
    denied = registry.check("11010519491231002X", "transport.rail.high_speed", at="2026-04-01")
    allowed = registry.check("11010519491231002X", "transport.rail.regular", at="2026-04-01")
    assert (denied.allowed, denied.effect) == (False, "deny")
    assert [m.id for m in denied.measures] == ["jd-no-high-speed-rail"]
    assert denied.reasons[0].kind == "list" and denied.reasons[0].entry == 1
    assert denied.reasons[0].list == "judgment-defaulters"
    assert denied.reasons[0].text.startswith("On the list of judgment defaulters (dishonest persons subject to enforcement) since 2026-03-01 (record #1, case 2025-001)")
    assert (allowed.allowed, allowed.effect, allowed.measures) == (True, "allow", [])


def test_every_decision_is_logged_with_policy_and_ledger_size(make_registry):
    registry = make_registry("china-judgment-defaulters")
    registry.ingest([_listed()])
    decision = registry.check("11010519491231002X", "transport.air", at="2026-04-01")
    row = registry.store.decisions.get(decision.decision_id)
    assert row.ledger_size == decision.ledger_size == 2
    assert row.policy_digest == load_policy("china-judgment-defaulters").digest
    assert (row.allowed, row.effect, row.service) == (False, "deny", "transport.air")
    assert row.at_us == at("2026-04-01") and row.subject == registry.pseudonym("11010519491231002X")


def test_replay_is_the_same_after_later_events(make_registry):
    registry = make_registry("china-judgment-defaulters")
    registry.ingest([_listed()])
    before = registry.check("11010519491231002X", "transport.air", at="2026-06-01")
    # Later: the debt is paid (and the court says it happened before the check), and a new
    # unrelated listing arrives. Today's answer changes; the logged decision must not.
    registry.ingest([
        event("11010519491231002X", "court.judgment_fulfilled", "2026-05-01T00:00:00Z", 2, provider="court",
              case_id="2025-001"),
    ])
    after = registry.check("11010519491231002X", "transport.air", at="2026-06-01")
    assert (before.allowed, after.allowed) == (False, True)
    replay = registry.replay(before.decision_id)
    assert replay.same is True
    assert replay.logged == replay.replayed == Verdict(False, "deny", [m.id for m in before.measures])
    assert replay.ledger_size == 2
    assert registry.replay(after.decision_id).replayed.allowed is True


def test_replay_detects_a_decision_that_the_ledger_does_not_support(make_registry):
    registry = make_registry("china-judgment-defaulters")
    registry.ingest([_listed()])
    decision = registry.check("11010519491231002X", "transport.air", at="2026-06-01")
    with behind_its_back(registry) as conn:  # someone edits the decision log (switching its guard off first)
        allow_tampering(conn, registry.store.db.backend, "decisions")
        conn.execute(text("UPDATE decisions SET allowed = :a, effect = 'allow' WHERE id = :i"),
                     {"a": True, "i": decision.decision_id})
    assert registry.replay(decision.decision_id).same is False


def test_checks_use_the_materialized_standing_until_it_expires(make_registry):
    registry = make_registry("china-judgment-defaulters")
    registry.ingest([_listed(trigger="obstruction")])  # a 2-year term from 2026-03-01
    assert registry.check("11010519491231002X", "transport.air", at="2027-06-01").allowed is False
    assert registry.check("11010519491231002X", "transport.air", at="2028-03-01").allowed is True
    assert registry.check("11010519491231002X", "transport.air", at="2026-02-01").allowed is True


def test_decision_reasons_are_at_most_four(make_registry):
    registry = make_registry("china-judgment-defaulters")
    registry.ingest([_listed(case=f"c{i}", key=i, when=f"2026-0{1 + i}-01T00:00:00Z") for i in range(6)])
    decision = registry.check("11010519491231002X", "transport.air", at="2026-08-01")
    assert len(decision.reasons) == 4
    assert [r.entry for r in decision.reasons] == [1, 2, 3, 4]  # oldest listing first


def test_an_unknown_subject_gets_the_policy_default(registry):
    decision = registry.check("nobody-at-all", "utility.heating", at="2026-04-01")
    assert (decision.allowed, decision.effect, decision.score, decision.tier) == (True, "discount", 1000, "A")


def test_a_decision_made_by_another_process_sees_new_entries(make_registry, database_url, tmp_path):
    from socialcredit.registry import Registry

    registry = make_registry("china-judgment-defaulters")
    other = Registry.open(database_url, key_file=tmp_path / "registry.key")
    try:
        assert other.check("11010519491231002X", "transport.air").allowed is True
        registry.ingest([_listed(when="2026-01-01T00:00:00Z")])
        other.view.freshness_s = 0.0
        decision = other.check("11010519491231002X", "transport.air")
        assert decision.allowed is False and decision.ledger_size == 2
    finally:
        other.close()


def test_policy_activation_is_an_entry_and_changes_later_standings(make_registry):
    registry = make_registry("rongcheng")
    registry.ingest([event("alice", "traffic.violation", "2026-01-05T00:00:00Z", 1)])
    old = registry.standing("alice", at="2026-02-01")
    seq = registry.activate(load_policy("sesame")).entry
    entry = registry.store.ledger.entry(seq)
    assert entry.kind == "policy" and entry.policy["id"] == "sesame"
    now = registry.standing("alice")
    assert (old.policy.id, now.policy.id) == ("rongcheng", "sesame")
    # Asked about a time before the activation, the old policy still answers.
    assert registry.standing("alice", at="2026-02-01").policy.id == "rongcheng"
    assert registry.standing("alice", known_at=seq).policy.id == "rongcheng"
    assert registry.verify().ok


def test_reads_are_audited(registry):
    registry.ingest([event("alice", "traffic.violation", "2026-01-05T00:00:00Z", 1)])
    registry.standing("alice")
    registry.explain("alice")
    rows = registry.store.audit.query(subject=registry.pseudonym("alice"))
    assert [r.action for r in rows] == ["explain", "standing"]
    assert all(r.principal == "library" for r in rows)


def test_a_process_that_appends_catches_up_with_what_others_appended(make_registry, database_url, tmp_path):
    from socialcredit.registry import Registry

    registry = make_registry("china-judgment-defaulters")
    other = Registry.open(database_url, key_file=tmp_path / "registry.key")
    try:
        assert registry.check("11010519491231002X", "transport.air").allowed is True
        other.ingest([_listed(when="2026-01-01T00:00:00Z")])  # another process lists her
        registry.ingest([_listed(who="bob", case="other", key=2, when="2026-01-02T00:00:00Z")])  # this one appends
        decision = registry.check("11010519491231002X", "transport.air")
        assert decision.allowed is False
        assert registry.replay(decision.decision_id).same is True
    finally:
        other.close()


def test_a_policy_activated_elsewhere_stops_a_stale_ingest(make_registry, database_url, tmp_path):
    from socialcredit.errors import Conflict
    from socialcredit.registry import Registry

    registry = make_registry("nosedive")
    other = Registry.open(database_url, key_file=tmp_path / "registry.key")
    try:
        other.activate(load_policy("rongcheng"))
        before = registry.root()
        with pytest.raises(Conflict, match="another process put policy rongcheng 2026.1 in force"):
            registry.ingest([event("ann", "peer.opt_in", "2026-05-01T00:00:00Z", "o1", provider="app")])
        assert registry.root() == before  # nothing written by the stale ingest
        assert registry.policy.id == "rongcheng"
    finally:
        other.close()
