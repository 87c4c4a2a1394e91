"""Tamper evidence beyond the entries: what a decision depends on (on SQLite and PostgreSQL).

Each test plays an attacker with direct database access (`behind_its_back`) and asserts that
`verify` names what was done: the decision and audit logs (hash chains whose heads the
checkpoints record), the materialized standings (`deep`), the pseudonym key (anchored in
the ledger), the checkpoints' frontiers, the columns of policy entries, and decisions that
hold at a ledger size the ledger no longer reaches. Where verify alone cannot see an attack
(a consistent rewrite or cut), a tree head published earlier does (`against`).
"""

from __future__ import annotations

import json
import os
import threading

import pytest
from sqlalchemy import text

from socialcredit.errors import Tampered
from socialcredit.intake.identity import create_key_file
from socialcredit.ledger import chains
from socialcredit.ledger.entries import canonical_json
from socialcredit.registry import Registry

from conftest import allow_rewriting, behind_its_back, event

CHINA = "china-judgment-defaulters"
PERSON = "11010519491231002X"


def _sql(registry, statement, **params):
    with behind_its_back(registry) as conn:
        result = conn.execute(text(statement), params)
        return result.all() if result.returns_rows else None


def _listed(who=PERSON, key=1, case="2025-001"):
    return event(who, "court.judgment_unfulfilled", "2026-03-01T00:00:00Z", key, provider="court", case_id=case,
                 trigger="refuses_to_pay")


def _decided(make_registry, intact=True):
    """A registry with six decisions: four before a checkpoint that records the log's head, two after."""
    registry = make_registry(CHINA)
    registry.ingest([_listed()])
    ids = [registry.check(PERSON, "transport.air", at="2026-04-01").decision_id for _ in range(4)]
    registry.ingest([_listed("bob", 2, "2025-002")])
    ids += [registry.check(PERSON, "transport.rail.regular", at="2026-04-01").decision_id for _ in range(2)]
    assert registry.verify().ok or not intact
    return registry, ids


def _found(report) -> set[tuple]:
    return {(p.kind, p.decision if p.decision is not None else p.entry) for p in report.problems}


def _chained(registry, log=chains.DECISIONS) -> list:
    table = registry.store.decisions if log == chains.DECISIONS else registry.store.audit
    return list(table.chained())


def _rechain(registry, first: int) -> None:
    """What a careful attacker does after editing decision #first: hash every row from there again
    and move the head, so that each row links to the one before it."""
    rows = _chained(registry)
    head = rows[first - 1].chain if first else chains.genesis(chains.DECISIONS)
    for row in rows[first:]:
        values = tuple(registry.store.decisions.get(row.name))
        head = chains.link(head, values)
        _sql(registry, "UPDATE decisions SET chain = :c WHERE id = :i", c=head, i=row.name)
    _sql(registry, "UPDATE log_heads SET size = :s, head = :h WHERE log = 'decisions'", s=len(rows), h=head)


# -- the decision log --------------------------------------------------------------------------


def test_the_decision_log_is_a_hash_chain_with_its_head_in_log_heads_and_checkpoints(make_registry):
    registry, ids = _decided(make_registry)
    rows = _chained(registry)
    assert [(r.seq, r.name) for r in rows] == list(enumerate(ids))
    head = chains.genesis(chains.DECISIONS)
    for row in rows:
        head = chains.link(head, tuple(registry.store.decisions.get(row.name)))
        assert row.chain == head
    assert registry.store.log_heads.all()[chains.DECISIONS] == (6, head)
    recorded = {at.size: at.decisions for at in registry.store.ledger.log_heads_at_checkpoints()}
    assert recorded == {1: (0, chains.genesis(chains.DECISIONS)), 2: (0, chains.genesis(chains.DECISIONS)),
                        3: (4, rows[3].chain)}
    report = registry.verify()
    assert (report.ok, report.decisions, report.audit) == (True, 6, 1)  # audit: the activation at init


def test_verify_reports_an_edited_decision(make_registry):
    registry, ids = _decided(make_registry)
    allow_rewriting(registry, "decisions")
    _sql(registry, "UPDATE decisions SET allowed = :a, effect = 'allow' WHERE id = :i", a=True, i=ids[1])
    report = registry.verify()
    assert _found(report) == {("decision-modified", ids[1])}
    assert report.problems[0].position == 1


def test_verify_reports_a_decision_rewritten_hashes_and_all_from_the_checkpoint_that_recorded_its_head(
        make_registry):
    registry, ids = _decided(make_registry)
    allow_rewriting(registry, "decisions")
    _sql(registry, "UPDATE decisions SET allowed = :a, effect = 'allow' WHERE id = :i", a=True, i=ids[2])
    _rechain(registry, 2)
    problems = registry.verify().problems
    assert [(p.kind, p.position, p.checkpoint) for p in problems] == [("decision-rewritten", 3, 3)]
    assert "the checkpoint of ledger size 3" in problems[0].message


def test_verify_reports_a_deleted_decision(make_registry):
    registry, ids = _decided(make_registry)
    allow_rewriting(registry, "decisions")
    _sql(registry, "DELETE FROM decisions WHERE id = :i", i=ids[2])
    problems = registry.verify().problems
    assert [(p.kind, p.position) for p in problems] == [("decision-deleted", 2)]
    assert problems[0].message == "decision #2 is missing from the log (deleted)"


def test_verify_reports_decisions_deleted_from_the_end(make_registry):
    registry, ids = _decided(make_registry)
    allow_rewriting(registry, "decisions")
    _sql(registry, "DELETE FROM decisions WHERE id IN (:a, :b)", a=ids[4], b=ids[5])
    problems = registry.verify().problems
    assert [(p.kind, p.position) for p in problems] == [("decision-deleted", 4)]
    assert "held 6 rows by the head recorded in log_heads, but only 4 are stored" in problems[0].message


def test_verify_reports_a_fabricated_decision_that_replays_as_the_same(make_registry):
    registry, ids = _decided(make_registry)
    row = registry.store.decisions.get(ids[0])
    fake = row._replace(id="d-fab0000000-00000001", principal="service:airline")
    columns = ", ".join(chains.DECISION_FIELDS)
    _sql(registry, f"INSERT INTO decisions ({columns}) VALUES ({', '.join(':' + c for c in chains.DECISION_FIELDS)})",
         **fake._asdict())
    assert registry.replay(fake.id).same  # the ledger supports it: replay alone cannot tell it was never made
    problems = registry.verify().problems
    assert _found(registry.verify()) == {("decision-inserted", fake.id)}
    assert problems[0].message == (f"decision {fake.id} (with no position) has no position of its own in the log's "
                                   "hash chain (inserted outside the registry)")


def test_verify_reports_a_fabricated_decision_chained_onto_the_log_but_beyond_its_head(make_registry):
    registry, ids = _decided(make_registry)
    last = _chained(registry)[-1]
    fake = registry.store.decisions.get(ids[0])._replace(id="d-fab0000000-00000002")
    columns = ", ".join([*chains.DECISION_FIELDS, "seq", "chain"])
    _sql(registry, f"INSERT INTO decisions ({columns}) VALUES "
                   f"({', '.join(':' + c for c in chains.DECISION_FIELDS)}, :seq, :chain)",
         **fake._asdict(), seq=6, chain=chains.link(last.chain, tuple(fake)))
    problems = registry.verify().problems
    assert [(p.kind, p.decision, p.position) for p in problems] == [("decision-inserted", fake.id, 6)]
    assert "beyond the head the registry recorded for the log (6 rows)" in problems[0].message


def test_verify_reports_a_decision_slipped_into_the_middle_of_the_log(make_registry):
    registry, ids = _decided(make_registry)
    allow_rewriting(registry, "decisions")
    rows = _chained(registry)
    _sql(registry, "UPDATE decisions SET seq = seq + 1000 WHERE seq >= 3")
    _sql(registry, "UPDATE decisions SET seq = seq - 999 WHERE seq >= 1000")
    fake = registry.store.decisions.get(ids[0])._replace(id="d-fab0000000-00000003")
    columns = ", ".join([*chains.DECISION_FIELDS, "seq", "chain"])
    _sql(registry, f"INSERT INTO decisions ({columns}) VALUES "
                   f"({', '.join(':' + c for c in chains.DECISION_FIELDS)}, 3, :chain)",
         **fake._asdict(), chain=chains.link(rows[2].chain, tuple(fake)))
    _sql(registry, "UPDATE log_heads SET size = 7 WHERE log = 'decisions'")
    found = _found(registry.verify())
    assert ("decision-inserted", fake.id) in found
    assert not {kind for kind, _ in found} & {"decision-modified", "decision-reordered"}


def _swap(registry, first: int, second: int):
    """Swap two decisions' positions in the log (their rows, hashes and all, stay as they were)."""
    allow_rewriting(registry, "decisions")
    _sql(registry, "UPDATE decisions SET seq = -1 WHERE seq = :a", a=first)
    _sql(registry, "UPDATE decisions SET seq = :a WHERE seq = :b", a=first, b=second)
    _sql(registry, "UPDATE decisions SET seq = :b WHERE seq = -1", b=second)
    return registry.verify()


def test_verify_reports_reordered_decisions(make_registry):
    registry, ids = _decided(make_registry)
    report = _swap(registry, 1, 2)
    assert _found(report) == {("decision-reordered", ids[1]), ("decision-reordered", ids[2])}
    assert report.problems[0].message == (f"decision {ids[2]} (#1) was logged at #2, after decision {ids[1]} (#2) "
                                          "in the hash chain (reordered)")


def test_verify_names_only_the_two_decisions_swapped_far_apart(make_registry):
    registry, ids = _decided(make_registry)
    report = _swap(registry, 0, 4)
    assert _found(report) == {("decision-reordered", ids[0]), ("decision-reordered", ids[4])}
    assert sorted(p.message for p in report.problems) == [
        f"decision {ids[0]} (#4) was logged at #0, after the log's start in the hash chain (reordered)",
        f"decision {ids[4]} (#0) was logged at #4, after decision {ids[3]} (#3) in the hash chain (reordered)"]


def test_verify_reports_a_decision_that_holds_at_a_ledger_size_the_ledger_no_longer_reaches(make_registry):
    registry, ids = _decided(make_registry)
    assert registry.store.decisions.get(ids[4]).ledger_size == 3
    # Cut the last entry off the end, consistently: entry, checkpoint (no subtree node at this size).
    allow_rewriting(registry)
    _sql(registry, "DELETE FROM entries WHERE seq = 2")
    _sql(registry, "DELETE FROM checkpoints WHERE size = 3")
    report = registry.verify()
    assert _found(report) == {("decision-ledger-size", ids[4]), ("decision-ledger-size", ids[5])}
    assert "holds at ledger size 3, but the ledger's last checkpoint is at size 2" in report.problems[0].message


def test_verify_reports_a_decision_under_a_policy_the_ledger_never_activated(make_registry):
    registry, ids = _decided(make_registry)
    allow_rewriting(registry, "decisions")
    _sql(registry, "UPDATE decisions SET policy_digest = :d WHERE id = :i", d="0" * 64, i=ids[0])
    assert _found(registry.verify()) == {("decision-modified", ids[0]), ("decision-policy", ids[0])}


def test_two_registries_on_one_database_do_not_fork_the_chains(make_registry, database_url, tmp_path):
    first = make_registry(CHINA)
    first.ingest([_listed()])
    failures = []
    with Registry.open(database_url, key_file=tmp_path / "registry.key") as second:  # as another process would
        def work(registry):
            try:
                for _ in range(25):
                    registry.check_many([(PERSON, "transport.air")] * 4, at="2026-04-01")
                    registry.standing(PERSON, at="2026-04-01")
            except Exception as exc:  # without the head's lock on PostgreSQL: a duplicate position
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(r,)) for r in (first, second, first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report = second.verify()
    assert failures == []
    assert (report.ok, report.problems) == (True, [])
    assert (report.decisions, report.audit) == (4 * 25 * 4, 1 + 4 * 25)
    assert [row.seq for row in _chained(first)] == list(range(400))


# -- the audit log -----------------------------------------------------------------------------


def _audited(make_registry):
    """A registry whose audit log holds the activation (#0), a standing read (#1) and an explanation (#2)."""
    registry, _ = _decided(make_registry)
    registry.standing(PERSON, at="2026-04-01")
    registry.explain(PERSON, at="2026-04-01")
    assert [row.values.action for row in _chained(registry, chains.AUDIT)] == ["activate", "standing", "explain"]
    allow_rewriting(registry, "audit")
    return registry


def test_verify_reports_an_edited_audit_record(make_registry):
    registry = _audited(make_registry)
    _sql(registry, "UPDATE audit SET principal = 'cli:nobody' WHERE seq = 1")
    problems = registry.verify().problems
    assert [(p.kind, p.position) for p in problems] == [("audit-modified", 1)]
    assert problems[0].message.startswith("audit record #1 does not match its chain hash")


def test_verify_reports_a_deleted_audit_record(make_registry):
    registry = _audited(make_registry)
    _sql(registry, "DELETE FROM audit WHERE seq = 1")
    assert [(p.kind, p.position) for p in registry.verify().problems] == [("audit-deleted", 1)]


# -- what else a decision depends on -----------------------------------------------------------


def test_verify_deep_reports_an_edited_standing_that_turned_a_check_from_denied_to_allowed(
        make_registry, database_url, tmp_path):
    registry = make_registry(CHINA)
    registry.ingest([_listed()])
    assert registry.check(PERSON, "transport.air", at="2026-04-01").allowed is False
    subject = registry.pseudonym(PERSON)
    body = json.loads(registry.store.standings.get(subject).body)
    body["measures"] = []
    _sql(registry, "UPDATE standings SET body = :b WHERE subject = :s", b=canonical_json(body), s=subject)
    with Registry.open(database_url, key_file=tmp_path / "registry.key") as live:  # reads the stored standing
        allowed = live.check(PERSON, "transport.air", at="2026-04-01")
        assert allowed.allowed is True
        assert live.replay(allowed.decision_id).same is False
        assert live.verify().ok  # the standing is derived: only a deep verify recomputes it
        report = live.verify(deep=True)
    assert [(p.kind, p.subject) for p in report.problems] == [("standing", subject)]
    assert report.problems[0].message == f"the materialized standing of {subject} differs from the fold of its " \
                                         "entries (measures)"
    assert report.standings == 1


def test_verify_deep_passes_on_standings_the_registry_wrote(make_registry):
    registry = make_registry(CHINA)
    registry.ingest([_listed(), _listed("bob", 2, "2025-002"), _listed("carol", 3, "2025-003")])
    registry.rebuild_standings()
    registry.ingest([_listed("dave", 4, "2025-004")])
    report = registry.verify(deep=True)
    assert (report.ok, report.standings) == (True, 4)


def test_verify_deep_passes_a_standing_written_before_standings_were_lean_and_not_one_with_a_reason_added(
        make_registry):
    """Registries written before kept every counting record among a standing's reasons; that is
    the same standing (rebuild makes it lean), but a reason that is not the fold's is reported."""
    from dataclasses import replace

    from socialcredit.instants import format_instant, now_us
    from socialcredit.scoring.compact import compact
    from socialcredit.scoring.fold import Reason, fold

    registry = make_registry()
    now = now_us()
    registry.ingest([event("many", t, format_instant(now - (i + 1) * 86_400_000_000), f"v{i}")
                     for i, t in enumerate(["civic.volunteering", "traffic.violation", "finance.bank_arrears"] * 10)])
    subject = registry.pseudonym("many")
    stored = registry.materialized(subject)
    full = fold(registry.policy, registry.store.ledger.entries_for_subject(subject), stored.valid_from_us, None,
                subject)
    assert len(full.reasons) > len(stored.reasons) and compact(full) == stored
    _sql(registry, "UPDATE standings SET body = :b WHERE subject = :s",
         b=replace(stored, reasons=full.reasons).to_json(), s=subject)
    assert registry.verify(deep=True).ok is True
    added = (*full.reasons, Reason("rule", "volunteering", 1, 5.0, now, None, effect=5.0))
    _sql(registry, "UPDATE standings SET body = :b WHERE subject = :s",
         b=replace(stored, reasons=added).to_json(), s=subject)
    report = registry.verify(deep=True)
    assert [(p.kind, p.subject) for p in report.problems] == [("standing", subject)]
    assert report.problems[0].message.endswith("differs from the fold of its entries (reasons)")


def test_verify_reports_a_swapped_key_file_with_its_fingerprint(make_registry, database_url, tmp_path):
    registry = make_registry(CHINA)
    registry.ingest([_listed()])
    anchored = registry.pseudonymizer.fingerprint
    assert json.loads(registry.store.ledger.iter_rows().__next__().body)["key_fingerprint"] == anchored
    other = create_key_file(tmp_path / "other.key")
    os.replace(tmp_path / "other.key", tmp_path / "registry.key")
    _sql(registry, "UPDATE meta SET value = :f WHERE name = 'key_fingerprint'", f=other.fingerprint)
    registry.close()
    with Registry.open(database_url, key_file=tmp_path / "registry.key") as swapped:  # opens: meta agrees
        problems = swapped.verify().problems
    assert [(p.kind, p.entry) for p in problems] == [("key", 0), ("key", 0)]
    assert problems[0].message == (f"the meta table names key fingerprint {other.fingerprint}, but the ledger "
                                   f"anchored {anchored} at entry #0 (the key was swapped)")
    assert problems[1].message.startswith(f"the pseudonym key in use has fingerprint {other.fingerprint}")


def test_verify_reports_an_edited_checkpoint_frontier_and_the_next_append_refuses_it(make_registry):
    registry = make_registry(CHINA)
    registry.ingest([_listed(), _listed("bob", 2, "2025-002")])  # size 3: a frontier of two hashes
    frontier = registry.store.ledger.last_checkpoint().frontier
    _sql(registry, "UPDATE checkpoints SET frontier = :f WHERE size = 3",
         f=json.dumps([frontier[0], "ab" * 32]))
    assert [(p.kind, p.checkpoint) for p in registry.verify().problems] == [("frontier", 3)]
    with pytest.raises(Tampered, match="the checkpoint of size 3 stores a frontier that does not give its root"):
        registry.ingest([_listed("carol", 3, "2025-003")])
    assert registry.size() == 3  # the honest append is not written onto a wrong tree (and blamed for it)


def test_verify_reports_a_subject_written_into_a_policy_entry(make_registry):
    registry = make_registry(CHINA)
    registry.ingest([_listed()])
    allow_rewriting(registry)
    _sql(registry, "UPDATE entries SET subject = :s WHERE seq = 0", s=registry.pseudonym(PERSON))
    problems = registry.verify().problems
    assert [(p.kind, p.entry) for p in problems] == [("modified", 0)]
    assert problems[0].message == "entry #0: column subject is set but its body has none (modified)"


# -- what only a published tree head shows -----------------------------------------------------


def test_a_consistent_rewrite_of_the_log_after_the_last_checkpoint_needs_a_published_head(make_registry):
    registry, ids = _decided(make_registry)
    published = registry.publish()
    assert (published.size, published.decisions.count) == (3, 6)
    allow_rewriting(registry, "decisions")
    _sql(registry, "UPDATE decisions SET allowed = :a, effect = 'deny' WHERE id = :i", a=False, i=ids[4])
    _rechain(registry, 4)
    assert registry.verify().ok  # no checkpoint recorded a head after decision #3: verify cannot see it
    problems = registry.verify(against=published).problems
    assert [(p.kind, p.position) for p in problems] == [("decision-rewritten", 5)]
    assert "the head recorded in the published tree head" in problems[0].message


def test_a_consistent_cut_of_the_ledger_needs_a_published_head(make_registry):
    registry = make_registry(CHINA)
    registry.ingest([_listed()])
    published = registry.publish()
    registry.ingest([_listed("bob", 2, "2025-002")])
    assert registry.verify(against=published).ok  # the ledger extends what was published
    allow_rewriting(registry)
    _sql(registry, "DELETE FROM entries WHERE seq >= 1")
    _sql(registry, "DELETE FROM checkpoints WHERE size >= 2")
    assert registry.verify().ok  # a cut with its checkpoints looks like a smaller ledger
    problems = registry.verify(against=published).problems
    assert [(p.kind, p.entry) for p in problems] == [("published", None)]
    assert problems[0].message == ("a tree head of size 2 was published, but the ledger's last checkpoint is at "
                                   "size 1 (entries were cut from the end)")


def test_a_rewritten_ledger_does_not_extend_the_published_head(make_registry):
    registry = make_registry(CHINA)
    registry.ingest([_listed()])
    published = registry.publish()
    # Rewrite entry #1 consistently: a new body, its leaf, the checkpoint's root and frontier.
    from socialcredit.ledger import merkle

    allow_rewriting(registry)
    body = registry.store.ledger.iter_rows().__next__()  # entry #0 stays
    forged = next(r for r in registry.store.ledger.iter_rows() if r.seq == 1).body.replace("2025-001", "2025-999")
    leaf = merkle.leaf_hash(forged.encode())
    frontier = merkle.Frontier.from_leaves([body.leaf_hash, leaf])
    _sql(registry, "UPDATE entries SET body = :b, leaf_hash = :h WHERE seq = 1", b=forged, h=leaf)
    _sql(registry, "UPDATE checkpoints SET root = :r, frontier = :f WHERE size = 2", r=frontier.root(),
         f=json.dumps(frontier.to_json()))
    assert registry.verify().ok
    problems = registry.verify(against=f"{published.size}:{published.root}").problems
    assert [p.kind for p in problems] == ["published"]
    assert "does not extend the tree head published at size 2" in problems[0].message


# -- upgrading a registry from before the chains -----------------------------------------------


def _to_schema_0004(registry) -> None:
    from alembic import command

    from socialcredit.store import schema

    with behind_its_back(registry) as conn:
        command.downgrade(schema._alembic_config(conn), "0004")
        assert not conn.dialect.has_table(conn, "log_heads")


def test_an_old_registry_gets_its_chains_built_in_the_order_rows_were_logged(make_registry, database_url, tmp_path):
    registry, ids = _decided(make_registry)
    registry.standing(PERSON, at="2026-04-01")
    expected = {log: registry.store.log_heads.all()[log] for log in chains.LOGS}
    _to_schema_0004(registry)
    registry.close()
    with Registry.open(database_url, key_file=tmp_path / "registry.key") as upgraded:
        assert upgraded.store.log_heads.all() == expected  # same rows, same order: the same chains
        assert [r.name for r in _chained(upgraded)] == ids
        assert upgraded.size() == 3  # entry #0 anchors the key already: no key entry
        assert upgraded.verify().ok
        upgraded.check(PERSON, "transport.air", at="2026-04-01")
        assert upgraded.verify().decisions == 7


def test_an_old_registry_gets_its_key_anchored_by_a_key_entry(make_registry, database_url, tmp_path, monkeypatch):
    from socialcredit.registry import ingest

    made = ingest.Entry
    monkeypatch.setattr(ingest, "Entry", lambda *args, **kwargs: made(*args, **{**kwargs, "key_fingerprint": None}))
    registry, ids = _decided(make_registry, intact=False)  # as a registry from before entry #0 carried the key
    monkeypatch.undo()
    fingerprint = registry.pseudonymizer.fingerprint
    assert [(p.kind, p.entry) for p in registry.verify().problems] == [("key", None)]
    _to_schema_0004(registry)
    registry.close()
    with Registry.open(database_url, key_file=tmp_path / "registry.key") as upgraded:
        assert upgraded.size() == 4
        key_entry = upgraded.store.ledger.entry(3)
        assert (key_entry.kind, key_entry.key_fingerprint) == ("key", fingerprint)
        recorded = upgraded.store.ledger.log_heads_at_checkpoints()
        assert [(at.size, at.decisions[0], at.audit[0]) for at in recorded] == [(4, 6, 1)]
        report = upgraded.verify()
        assert (report.ok, report.size, report.decisions) == (True, 4, 6)
        upgraded.ingest([_listed("carol", 3, "2025-003")])  # appends go on from the key entry
        assert upgraded.verify().ok
