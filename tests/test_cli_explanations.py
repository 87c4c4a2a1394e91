"""Explanations are true: one calendar (the policy's) everywhere, durations that land where a
reader expects, no score where a policy keeps none, and who reported each record."""

from __future__ import annotations

import pytest

from test_cli import Registry

DEFAULTER = "11010519491231002X"


def _arrears(when: str) -> dict:
    return {"subject": "alice", "type": "finance.bank_arrears", "occurred_at": when, "provider": "bank-of-rongcheng",
            "key": "a1", "attributes": {}}


def test_a_record_shows_one_date_in_the_policys_zone_and_counts_two_calendar_years(tmp_path):
    cli = Registry(tmp_path)
    cli.init("rongcheng")
    # Midnight in Shanghai is 16:00 the day before in UTC: the reader's date is the 1st.
    cli.ingest(_arrears("2026-03-01T00:00:00+08:00"))
    standing = cli.ok("standing", "alice", "--at", "2026-06-01").stdout
    explained = cli.ok("explain", "alice", "--at", "2026-06-01").stdout
    assert "(record #1, 2026-03-01); counts until 2028-03-01." in standing
    assert "#1 2026-03-01 " in explained and "2026-02-28" not in explained + standing
    assert "counts until 2028-03-01" in explained
    data = cli.json("explain", "alice", "--at", "2026-06-01")
    assert data["entries"][0]["occurred_on"] == "2026-03-01"
    assert data["entries"][0]["occurred_at"] == "2026-02-28T16:00:00Z"  # the instant, for machines
    # It counts until midnight of 1 March 2028 in Shanghai, and not a minute longer.
    assert cli.json("standing", "alice", "--at", "2028-02-29T15:59:59Z")["score"] < 1000
    assert cli.json("standing", "alice", "--at", "2028-02-29T16:00:00Z")["score"] == 1000


def test_explain_names_who_reported_each_record(tmp_path):
    cli = Registry(tmp_path)
    cli.init("rongcheng")
    cli.ingest(_arrears("2026-03-01T00:00:00+08:00"))
    data = cli.json("explain", "alice", "--at", "2026-06-01")
    assert [e["provider"] for e in data["entries"]] == ["bank-of-rongcheng"]
    assert "(reported by bank-of-rongcheng)" in cli.ok("explain", "alice", "--at", "2026-06-01").stdout


def test_a_policy_without_a_score_shows_none(tmp_path):
    cli = Registry(tmp_path)
    cli.init("china-judgment-defaulters")
    cli.ingest({"subject": DEFAULTER, "type": "court.judgment_unfulfilled", "occurred_at": "2026-03-01T00:00:00Z",
                "provider": "court", "key": "j1", "attributes": {"case_id": "2026-7", "trigger": "refuses_to_pay"}})
    standing = cli.json("standing", DEFAULTER, "--at", "2026-04-01")
    assert standing["score"] is None and standing["dimensions"] == {}
    assert standing["lists"][0]["list"] == "judgment-defaulters"
    text = cli.ok("standing", DEFAULTER, "--at", "2026-04-01").stdout
    assert "Score" not in text and "No score" in text
    decision = cli.json("check", DEFAULTER, "transport.air", "--at", "2026-04-01", code=3)
    assert decision["score"] is None and decision["allowed"] is False


def test_sesame_reasons_state_effects_that_add_up_to_the_real_change(tmp_path):
    # A judgment (−60) and a loan overdue (−10) on credit history, which starts at 35 and
    # cannot go below 0: together they move it 35, not 70, and the reasons must say so.
    cli = Registry(tmp_path)
    cli.init("sesame")
    newcomer = cli.json("standing", "nobody", "--at", "2026-06-01")["score"]
    cli.ingest({"subject": "alice", "type": "court.judgment_unfulfilled", "occurred_at": "2026-03-01T00:00:00Z",
                "provider": "court", "key": "j1", "attributes": {"case_id": "2026-9", "trigger": "refuses_to_pay"}},
               {"subject": "alice", "type": "finance.loan_overdue", "occurred_at": "2026-03-02T00:00:00Z",
                "provider": "bank", "key": "l1", "attributes": {}})
    standing = cli.json("standing", "alice", "--at", "2026-06-01")
    assert standing["dimensions"]["credit_history"] == 0
    rules = [r for r in standing["reasons"] if r["kind"] == "rule"]
    assert len(rules) == 2
    assert sum(r["effect"] for r in rules) == pytest.approx(standing["score"] - newcomer, abs=0.5)
    judgment, overdue = rules  # ranked by effect: the judgment pulls six times as hard
    assert judgment["effect"] == pytest.approx(6 * overdue["effect"])
    shown = float(judgment["text"].split("(about ")[1].split(" on the score")[0].replace("\u2212", "-"))
    assert shown == pytest.approx(judgment["effect"], abs=0.05)


def test_a_standing_reads_well_at_80_columns_and_shows_the_reasons_that_matter_most(tmp_path):
    cli = Registry(tmp_path)
    cli.init("sesame")
    events = [{"subject": "alice", "type": "commerce.purchase", "occurred_at": f"2026-{m:02d}-0{d}T10:00:00Z",
               "provider": "shop", "key": f"p{m}-{d}", "attributes": {}} for m in range(1, 6) for d in range(1, 5)]
    events.append({"subject": "alice", "type": "court.judgment_unfulfilled", "occurred_at": "2026-03-01T00:00:00Z",
                   "provider": "court", "key": "j1", "attributes": {"case_id": "2026-9", "trigger": "refuses_to_pay"}})
    cli.ingest(*events)
    reasons = cli.json("standing", "alice", "--at", "2026-06-01")["reasons"]
    assert len(reasons) > 20
    result = cli.runner.invoke(__import__("socialcredit.cli", fromlist=["app"]).app,
                               ["--db", cli.url, "standing", "alice", "--at", "2026-06-01"],
                               env={**__import__("test_cli").ENV, "COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and max(len(line) for line in lines) <= 80
    assert sum(line.startswith("  • ") for line in lines) == 5  # the five that matter most
    assert f"… and {len(reasons) - 5} more records that count" in result.stdout
    measures = cli.json("standing", "alice", "--at", "2026-06-01")["measures"]
    assert len(measures) == 4
    for measure in measures:  # names are never cut or broken inside the table
        assert any(measure["id"] in line for line in lines) and any(measure["service"] in line for line in lines)
