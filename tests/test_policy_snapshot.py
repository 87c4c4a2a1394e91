"""A policy opened from its kept snapshot is the policy its text gives: same lookups, same fold.

Opening a registry compiles its policy from a snapshot of the validated document
(policy/snapshot.py) instead of validating the text with pydantic; these tests hold the two
equal, hold a stale or foreign snapshot unused, and make `verify` name an edited one.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit.policy import snapshot as snapshots
from socialcredit.policy.load import load_policy, pack_names
from socialcredit.policy.snapshot import Record, from_snapshot, snapshot
from socialcredit.registry import Registry
from socialcredit.scoring.compact import compact
from socialcredit.scoring.fold import fold

from conftest import event
from test_batch_engine import policies, populations

PACKS = {name: load_policy(name) for name in pack_names()}
COMPILED = ("id", "version", "timezone", "scored", "dimension_index", "score_factors", "rules", "rules_by_event",
            "list_max_total", "list_triggers_by_event", "tiers", "measures", "has_decay", "hold_negative",
            "rating_dimensions", "latest_dimensions", "penalty_rules", "reference_attributes")


def _plain(value):
    """A model or a record as nested dictionaries, to compare the two."""
    if isinstance(value, Record):
        return {name: _plain(v) for name, v in value._fields.items()}
    if hasattr(type(value), "model_fields"):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _assert_same_policy(validated, restored):
    assert restored is not None
    assert restored.digest == validated.digest
    for name in COMPILED:
        assert _plain(getattr(restored, name)) == _plain(getattr(validated, name)), name
    for name in ("scale", "dimensions", "event_types", "lists", "ratings"):
        assert _plain(getattr(restored, name)) == _plain(getattr(validated, name)), name


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_every_pack_restored_from_its_snapshot_compiles_to_the_same_policy(pack):
    validated = PACKS[pack]
    restored = from_snapshot(snapshot(validated), validated.text, validated.source)
    _assert_same_policy(validated, restored)
    assert restored._document is None  # nothing was validated to make it
    # The document itself, when asked for, is validated from the text: the real one.
    assert restored.document.model_dump() == validated.document.model_dump()
    assert snapshot(restored) == snapshot(validated)


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_every_pack_folds_the_same_from_its_snapshot(pack):
    validated = PACKS[pack]
    restored = from_snapshot(snapshot(validated), validated.text, validated.source)

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(populations(validated))
    def check(population):
        histories, at_us, known_at = population
        for subject, history in histories:
            expected = compact(fold(validated, history, at_us, known_at, subject))
            assert compact(fold(restored, history, at_us, known_at, subject)).to_json() == expected.to_json()

    check()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_policies_restored_from_their_snapshots_fold_the_same(data):
    validated = data.draw(policies())
    restored = from_snapshot(snapshot(validated), validated.text, validated.source)
    _assert_same_policy(validated, restored)
    histories, at_us, known_at = data.draw(populations(validated, subjects=3, size=25))
    for subject, history in histories:
        assert compact(fold(restored, history, at_us, known_at, subject)) == compact(
            fold(validated, history, at_us, known_at, subject))


def test_a_snapshot_of_another_text_or_other_code_is_not_used(monkeypatch):
    rongcheng, sesame = PACKS["rongcheng"], PACKS["sesame"]
    kept = snapshot(rongcheng)
    assert from_snapshot(kept, sesame.text, sesame.source) is None  # not this text
    assert from_snapshot(kept, rongcheng.text + "\n", rongcheng.source) is None  # one byte more is another text
    assert from_snapshot("not json", rongcheng.text, rongcheng.source) is None
    assert from_snapshot(json.dumps({"code": snapshots.CODE}), rongcheng.text, rongcheng.source) is None
    monkeypatch.setattr(snapshots, "CODE", "another-version-of-the-schema")
    assert from_snapshot(kept, rongcheng.text, rongcheng.source) is None  # the schema may have changed since


def test_a_record_is_read_only():
    restored = from_snapshot(snapshot(PACKS["rongcheng"]), PACKS["rongcheng"].text, "x")
    with pytest.raises(AttributeError):
        restored.scale.base = 0
    with pytest.raises(AttributeError):
        restored.scale.no_such_field  # noqa: B018


def _snapshot_rows(path) -> dict[str, str]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT name, value FROM meta WHERE name LIKE 'policy:%'"))


def test_activation_keeps_the_snapshot_and_opening_uses_it(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/r.db"
    Registry.init(url, "rongcheng").close()
    rows = _snapshot_rows(tmp_path / "r.db")
    assert list(rows.values()) == [snapshot(PACKS["rongcheng"])]

    import socialcredit.registry.policies as book_module

    def no_validation(*args, **kwargs):
        raise AssertionError("the policy's text was validated although its snapshot is kept")

    monkeypatch.setattr(book_module, "parse_policy", no_validation)
    with Registry.open(url) as registry:
        assert registry.policy.digest == PACKS["rongcheng"].digest
        registry.ingest([event("p1", "traffic.violation", "2026-01-05T08:00:00Z", 1)])
        from_the_snapshot = registry.standing("p1", at="2026-02-01").to_dict()
    monkeypatch.undo()
    with sqlite3.connect(tmp_path / "r.db") as conn:
        conn.execute("DELETE FROM meta WHERE name LIKE 'policy:%'")
    with Registry.open(url) as registry:
        registry.rebuild_standings()
        assert registry.standing("p1", at="2026-02-01").to_dict() == from_the_snapshot
    assert from_the_snapshot["score"] < 1000  # the violation counted


def test_a_registry_without_a_snapshot_validates_its_text_and_rebuild_keeps_one(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    Registry.init(url, "sesame").close()
    with sqlite3.connect(tmp_path / "r.db") as conn:
        conn.execute("DELETE FROM meta WHERE name LIKE 'policy:%'")  # as a registry from before snapshots
    with Registry.open(url) as registry:
        assert registry.policy.digest == PACKS["sesame"].digest
        assert registry.policy._document is not None  # validated from the text
        registry.rebuild_standings()
    assert list(_snapshot_rows(tmp_path / "r.db").values()) == [snapshot(PACKS["sesame"])]


def test_verify_names_an_edited_snapshot(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    Registry.init(url, "rongcheng").close()
    (name, kept), = _snapshot_rows(tmp_path / "r.db").items()
    edited = kept.replace('"points":-5', '"points":-500', 1)
    assert edited != kept
    with sqlite3.connect(tmp_path / "r.db") as conn:
        conn.execute("UPDATE meta SET value = ? WHERE name = ?", (edited, name))
    with Registry.open(url) as registry:
        report = registry.verify()
    assert not report.ok
    assert [p.kind for p in report.problems] == ["policy_snapshot"]
    assert "rongcheng 2026.1" in report.problems[0].message


def test_a_check_process_imports_no_validation_library(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    Registry.init(url, "china-judgment-defaulters").close()
    program = (
        "import json, sys\n"
        "from socialcredit._entry import main\n"
        "sys.argv = ['socialcredit', '--db', sys.argv[1], 'check', 'alice', 'transport.air', '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", program, url], capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    assert json.loads("\n".join(lines[:-1]))["allowed"] is True  # it did decide
    modules = {m.split(".")[0] for m in json.loads(lines[-1])}
    assert not modules & {"pydantic", "pydantic_core", "rich"}, sorted(modules & {"pydantic", "pydantic_core", "rich"})
