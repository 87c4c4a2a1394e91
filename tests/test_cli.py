"""End-to-end tests of the command line, through Typer's CliRunner.

Every test gets its own registry in `tmp_path` (`--db sqlite:///{tmp_path}/r.db`). Times are
always given with `--at`, so the answers do not depend on the day the tests run.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import stat
from itertools import takewhile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socialcredit.cli import app

from conftest import sqlite_from_template
from socialcredit.policy.lint import lint, summarize
from socialcredit.policy.load import load_policy, pack_names

# No SOCIALCREDIT_* variable from the developer's shell may leak into a test; a wide
# COLUMNS keeps Rich from wrapping long lines (tests/test_bad_input.py covers wrapping).
ENV = {
    "SOCIALCREDIT_DB": None,
    "SOCIALCREDIT_KEY": None,
    "SOCIALCREDIT_KEY_FILE": None,
    "SOCIALCREDIT_KEY_VERSION": None,
    "SOCIALCREDIT_MAX_CLOCK_SKEW": None,
    "COLUMNS": "1000",
}

ALICE = "alice"
DEFAULTER = "11010519491231002X"  # a valid resident identity number (check character X)
CASE = "(2026)J0101Z1"


# -- helpers -----------------------------------------------------------------------------------


class Registry:
    """One registry in a temporary folder, driven through the CLI."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.db = folder / "r.db"
        self.url = f"sqlite:///{self.db}"
        self.runner = CliRunner()
        self._files = 0

    def run(self, *args: str, input: str | None = None):
        return self.runner.invoke(app, ["--db", self.url, *args], input=input, env=ENV)

    def ok(self, *args: str, code: int = 0):
        result = self.run(*args)
        assert result.exit_code == code, (result.exit_code, result.output, result.exception)
        return result

    def json(self, *args: str, code: int = 0):
        return json.loads(self.ok(*args, "--json", code=code).stdout)

    def init(self, policy: str = "rongcheng") -> dict:
        sqlite_from_template(self.db)  # the schema, migrated once per test run
        return self.json("init", "--policy", policy)

    def size(self) -> int:
        return self.json("root")["size"]

    def file(self, text: str, suffix: str = ".jsonl") -> Path:
        self._files += 1
        path = self.folder / f"events{self._files}{suffix}"
        path.write_text(text, encoding="utf-8")
        return path

    def jsonl(self, *events: dict) -> Path:
        return self.file("".join(json.dumps(e) + "\n" for e in events))

    def ingest(self, *events: dict, options: tuple[str, ...] = (), code: int = 0) -> dict:
        return self.json("ingest", str(self.jsonl(*events)), *options, code=code)

    def standing(self, ref: str = ALICE, *options: str) -> dict:
        return self.json("standing", ref, *options)

    def check(self, service: str, at: str, ref: str = DEFAULTER) -> tuple[int, dict]:
        result = self.run("check", ref, service, "--at", at, "--json")
        assert result.exit_code in (0, 3), (result.output, result.exception)
        return result.exit_code, json.loads(result.stdout)


def event(key: str, type: str = "traffic.violation", *, subject: str = ALICE,
          at: str = "2026-01-10T08:00:00Z", provider: str | None = "police", **attributes) -> dict:
    item = {"subject": subject, "type": type, "occurred_at": at, "key": key}
    if provider is not None:
        item["provider"] = provider
    if attributes:
        item["attributes"] = attributes
    return item


def ticket(key: str = "t1", **kw) -> dict:
    """-5 points under rongcheng, counts for a year."""
    return event(key, "traffic.violation", offence="speeding", **kw)


def late_payment(key: str = "u1", **kw) -> dict:
    """-20 points under rongcheng, counts for a year."""
    kw.setdefault("at", "2026-02-10T08:00:00Z")
    kw.setdefault("provider", "power")
    return event(key, "utility.late_payment", utility="power", **kw)


def listing(key: str = "c1", case: str = CASE, **kw) -> dict:
    """Puts the subject on China's list of judgment defaulters (no term)."""
    kw.setdefault("provider", "court")
    return event(key, "court.judgment_unfulfilled", subject=DEFAULTER, case_id=case,
                 trigger="refuses_to_pay", **kw)


def fulfilled(key: str = "c2", case: str = CASE, **kw) -> dict:
    kw.setdefault("provider", "court")
    kw.setdefault("at", "2026-02-10T08:00:00Z")
    return event(key, "court.judgment_fulfilled", subject=DEFAULTER, case_id=case, **kw)


@pytest.fixture
def reg(tmp_path) -> Registry:
    registry = Registry(tmp_path)
    registry.init("rongcheng")
    return registry


@pytest.fixture
def china(tmp_path) -> Registry:
    """A China judgment-defaulters registry in which DEFAULTER is listed from 2026-01-10."""
    registry = Registry(tmp_path)
    registry.init("china-judgment-defaulters")
    registry.ingest(listing())
    return registry


# -- init --------------------------------------------------------------------------------------


def test_init_creates_the_key_file_beside_the_db_with_mode_0600(tmp_path):
    registry = Registry(tmp_path)
    result = registry.init()
    key = tmp_path / "r.db.key"
    assert key.is_file()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert result["policy"]["id"] == "rongcheng"
    assert result["size"] == 1  # the policy activation is the first ledger entry


def test_init_twice_is_refused_with_a_one_line_error(reg):
    key_before = (reg.folder / "r.db.key").read_bytes()
    root_before = reg.json("root")
    result = reg.run("init")
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    assert lines[0].endswith("r.db already holds a registry")
    assert (reg.folder / "r.db.key").read_bytes() == key_before
    assert reg.json("root") == root_before


# -- ingest ------------------------------------------------------------------------------------


def test_ingest_jsonl_reports_accepted_duplicates_rejected_errors(reg):
    result = reg.ingest(ticket(), late_payment())
    assert result["accepted"] == 2
    assert result["duplicates"] == 0
    assert result["rejected"] == 0
    assert result["errors"] == []
    assert result["ledger_size"] == 3
    assert reg.size() == 3


def test_ingest_csv_takes_extra_columns_as_attributes_and_empty_cells_as_absent(reg):
    rows = [
        ["subject", "type", "occurred_at", "provider", "key", "offence", "utility"],
        [ALICE, "traffic.violation", "2026-01-10T08:00:00Z", "police", "t1", "speeding", ""],
        [ALICE, "utility.late_payment", "2026-02-10T08:00:00Z", "power", "u1", "", "power"],
    ]
    path = reg.folder / "events.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    # An empty `utility` cell on a traffic ticket would be an attribute outside its schema.
    result = reg.json("ingest", str(path))
    assert (result["accepted"], result["rejected"], result["errors"]) == (2, 0, [])
    # The same events as JSONL, attributes only where a cell was filled: exact duplicates.
    again = reg.ingest(ticket(), late_payment())
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 2, 0)
    assert reg.standing(ALICE, "--at", "2026-03-01")["score"] == 975


def test_ingest_csv_reports_the_file_line_of_a_bad_row(reg):
    path = reg.file(
        "subject,type,occurred_at,provider,key,utility\n"
        "alice,utility.late_payment,2026-02-10T08:00:00Z,power,u1,power\n"
        "alice,utility.late_payment,2026-02-11T08:00:00Z,power,u2,oil\n",
        suffix=".csv",
    )
    result = reg.json("ingest", str(path), code=2)
    assert [e["line"] for e in result["errors"]] == [3]  # line 1 is the header
    assert result["accepted"] == 0


def test_a_number_attribute_from_csv_equals_the_same_number_from_jsonl(reg):
    path = reg.file(
        "subject,type,occurred_at,provider,key,hours\n"
        "bob,civic.volunteering,2026-01-10T08:00:00Z,ngo,v1,3\n",
        suffix=".csv",
    )
    assert reg.json("ingest", str(path))["accepted"] == 1
    same = reg.jsonl(event("v1", "civic.volunteering", subject="bob", provider="ngo", hours=3))
    again = json.loads(reg.run("ingest", str(same), "--json").stdout)
    assert again["errors"] == []
    assert (again["duplicates"], again["rejected"]) == (1, 0)


def test_ingest_csv_with_a_utf8_byte_order_mark(reg):
    path = reg.folder / "excel.csv"
    path.write_bytes(
        "\ufeffsubject,type,occurred_at,provider,key,offence\n"
        "alice,traffic.violation,2026-01-10T08:00:00Z,police,t1,speeding\n".encode("utf-8")
    )
    result = reg.run("ingest", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accepted"] == 1


def test_ingest_jsonl_from_stdin_leaves_a_byte_order_mark_out_and_names_a_line_that_is_not_utf_8(reg):
    first = b"\xef\xbb\xbf" + json.dumps(ticket()).encode() + b"\n"
    result = reg.runner.invoke(app, ["--db", reg.url, "ingest", "-", "--json"], input=first, env=ENV)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accepted"] == 1
    size = reg.size()
    broken = json.dumps(late_payment()).encode() + b"\n" + b'{"subject": "caf\xe9"}\n'
    result = reg.runner.invoke(app, ["--db", reg.url, "ingest", "-"], input=broken, env=ENV)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: <stdin> line 2: not UTF-8 text (invalid continuation byte at byte 17 of the line)"]
    assert reg.size() == size


def test_ingesting_the_same_file_again_reports_only_duplicates(reg):
    path = reg.jsonl(ticket(), late_payment())
    first = reg.json("ingest", str(path))
    again = reg.json("ingest", str(path))
    assert first["accepted"] == 2
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 2, 0)
    assert again["written"] is False
    assert again["ledger_size"] == first["ledger_size"] == reg.size() == 3


def test_same_key_with_a_different_body_is_refused_and_nothing_is_written(reg):
    reg.ingest(ticket("t1"))
    before = reg.json("root")
    changed = ticket("t1", at="2026-01-11T08:00:00Z")
    result = reg.ingest(changed, ticket("t2"), code=2)
    assert result["accepted"] == 0
    assert result["rejected"] == 1
    assert [e["line"] for e in result["errors"]] == [1]
    assert "already used for a different event" in result["errors"][0]["error"]
    assert reg.json("root") == before  # not even the new t2 went in


def test_one_bad_line_refuses_the_file_and_every_bad_line_is_named(reg):
    bad_type = event("x1", "no.such_event")
    bad_time = ticket("x2", at="yesterday")
    result = reg.ingest(ticket("t1"), bad_type, late_payment("u1"), bad_time, code=2)
    assert result["accepted"] == 0
    assert result["rejected"] == 2
    assert [e["line"] for e in result["errors"]] == [2, 4]
    assert "no.such_event" in result["errors"][0]["error"]
    assert "occurred_at" in result["errors"][1]["error"]
    assert reg.size() == 1


def test_skip_invalid_ingests_the_good_lines_and_lists_the_rest(reg):
    result = reg.ingest(ticket("t1"), event("x1", "no.such_event"), late_payment("u1"),
                        ticket("x2", at="yesterday"), options=("--skip-invalid",))
    assert result["accepted"] == 2
    assert result["rejected"] == 2
    assert [e["line"] for e in result["errors"]] == [2, 4]
    assert reg.size() == 3


def test_provider_option_fills_in_missing_providers(reg):
    result = reg.ingest(ticket("t1", provider=None), options=("--provider", "police"))
    assert result["accepted"] == 1
    # It was stored under provider "police": the same event naming it is a duplicate.
    again = reg.ingest(ticket("t1", provider="police"))
    assert (again["accepted"], again["duplicates"]) == (0, 1)


def test_provider_option_refuses_an_event_naming_another_provider(reg):
    result = reg.ingest(ticket("t1", provider="bank"), options=("--provider", "police"), code=2)
    assert result["accepted"] == 0
    assert "differs from --provider" in result["errors"][0]["error"]
    assert reg.size() == 1


def test_an_event_without_any_provider_is_refused(reg):
    result = reg.ingest(ticket("t1", provider=None), code=2)
    assert "missing 'provider'" in result["errors"][0]["error"]


# -- standing ----------------------------------------------------------------------------------


def test_standing_json_has_score_tier_dimensions_lists_measures_reasons_policy(reg):
    reg.ingest(ticket(), late_payment())
    result = reg.standing(ALICE, "--at", "2026-03-01")
    assert result["score"] == 975  # 1000 - 5 - 20
    assert result["tier"] == "A"
    assert result["dimensions"] == {"conduct": -25}
    assert result["lists"] == []
    assert {m["id"] for m in result["measures"]} == {"heating-discount", "bike-share-deposit-free"}
    for measure in result["measures"]:
        assert {"id", "service", "effect", "until"} <= measure.keys()
    bike = next(m for m in result["measures"] if m["id"] == "bike-share-deposit-free")
    assert (bike["service"], bike["effect"], bike["until"]) == ("transport.bike_share", "deposit_free", None)
    assert [r["rule"] for r in result["reasons"]] == ["utility-late", "traffic-ticket"]
    assert result["reasons"][1]["text"].startswith("\u22125 points: a traffic ticket")
    assert result["policy"]["id"] == "rongcheng"
    assert result["policy"]["version"] == "2026.1"


def test_standing_of_a_listed_subject_shows_the_list_and_its_measures(china):
    result = china.standing(DEFAULTER, "--at", "2026-03-01")
    assert [(item["list"], item["case"]) for item in result["lists"]] == [("judgment-defaulters", CASE)]
    flights = next(m for m in result["measures"] if m["id"] == "jd-no-flights")
    assert (flights["service"], flights["effect"], flights["until"]) == ("transport.air", "deny", None)
    assert result["policy"]["id"] == "china-judgment-defaulters"


def test_at_leaves_out_events_that_occur_after_it(reg):
    reg.ingest(ticket(at="2026-01-10T08:00:00Z"), late_payment(at="2026-02-10T08:00:00Z"))
    assert reg.standing(ALICE, "--at", "2026-01-01")["score"] == 1000
    assert reg.standing(ALICE, "--at", "2026-02-01")["score"] == 995
    assert reg.standing(ALICE, "--at", "2026-03-01")["score"] == 975
    # The ticket counts for one year: gone by 2027-01-15, the late payment still counts.
    assert reg.standing(ALICE, "--at", "2027-01-15")["score"] == 980


def test_known_at_ignores_entries_recorded_later(reg):
    reg.ingest(ticket())        # entry 1, ledger size 2
    reg.ingest(late_payment())  # entry 2, ledger size 3
    now = reg.standing(ALICE, "--at", "2026-03-01")
    then = reg.standing(ALICE, "--at", "2026-03-01", "--known-at", "2")
    assert (now["score"], now["known_at"]) == (975, 3)
    assert (then["score"], then["known_at"]) == (995, 2)
    assert [r["rule"] for r in then["reasons"]] == ["traffic-ticket"]


# -- explain -----------------------------------------------------------------------------------


def test_explain_lists_every_entry_with_the_text_of_its_effect(reg):
    reg.ingest(ticket(), late_payment())
    result = reg.json("explain", ALICE, "--at", "2026-03-01")
    assert [item["entry"] for item in result["entries"]] == [1, 2]
    assert [item["type"] for item in result["entries"]] == ["traffic.violation", "utility.late_payment"]
    texts = [[effect["text"] for effect in item["effects"]] for item in result["entries"]]
    assert texts == [
        ["\u22125 points (a traffic ticket), counts until 2027-01-10."],
        ["\u221220 points (a utility bill paid late), counts until 2027-02-10."],
    ]
    assert result["score"] == 975


def test_explain_says_when_an_event_is_later_than_the_time_asked_about(reg):
    reg.ingest(ticket(), late_payment())
    result = reg.json("explain", ALICE, "--at", "2026-02-01")
    later = result["entries"][1]["effects"]
    assert any(e["status"] == "later" and "not counted yet" in e["text"] for e in later)


# -- check and replay --------------------------------------------------------------------------


DECISION_KEYS = {"allowed", "effect", "measures", "reasons", "decision_id", "policy", "ledger_size"}


@pytest.mark.parametrize("service, measure", [
    ("transport.air", "jd-no-flights"),
    ("transport.rail.high_speed", "jd-no-high-speed-rail"),
])
def test_check_denies_a_listed_defaulter_with_exit_status_3(china, service, measure):
    code, result = china.check(service, "2026-03-01")
    assert code == 3
    assert DECISION_KEYS <= result.keys()
    assert result["allowed"] is False
    assert result["effect"] == "deny"
    assert [m["id"] for m in result["measures"]] == [measure]
    assert 1 <= len(result["reasons"]) <= 4
    assert result["reasons"][0]["list"] == "judgment-defaulters"
    assert result["decision_id"].startswith("d-")
    assert result["policy"]["id"] == "china-judgment-defaulters"
    assert result["ledger_size"] == 2


def test_check_allows_regular_rail_with_exit_status_0(china):
    code, result = china.check("transport.rail.regular", "2026-03-01")
    assert code == 0
    assert DECISION_KEYS <= result.keys()
    assert (result["allowed"], result["effect"], result["measures"], result["reasons"]) == (True, "allow", [], [])


def test_check_gives_at_most_four_reasons(china):
    china.ingest(*[listing(f"c{n}", case=f"(2026)J0101Z{n}") for n in range(2, 7)])
    assert len(china.standing(DEFAULTER, "--at", "2026-03-01")["lists"]) == 6
    code, result = china.check("transport.air", "2026-03-01")
    assert code == 3
    assert len(result["reasons"]) == 4


def test_judgment_fulfilled_with_the_same_case_lifts_the_restriction(china):
    china.ingest(fulfilled(at="2026-02-10T08:00:00Z"))
    before_code, _ = china.check("transport.air", "2026-02-01")
    after_code, after = china.check("transport.air", "2026-03-01")
    assert before_code == 3
    assert after_code == 0
    assert (after["allowed"], after["effect"]) == (True, "allow")


def test_judgment_fulfilled_for_another_case_lifts_nothing(china):
    china.ingest(fulfilled(case="(2026)OTHER"))
    code, _ = china.check("transport.air", "2026-03-01")
    assert code == 3


def test_replay_gives_the_same_decision_after_later_events(china):
    _, denied = china.check("transport.air", "2026-03-01")
    china.ingest(fulfilled())
    _, now = china.check("transport.air", "2026-03-01")
    assert now["allowed"] is True  # the later event really changed the answer
    replay = china.json("replay", denied["decision_id"])
    assert replay["same"] is True
    assert replay["logged"] == replay["replayed"] == {"allowed": False, "effect": "deny", "measures": ["jd-no-flights"]}
    assert replay["ledger_size"] == 2


def test_replay_of_a_check_about_a_time_before_a_policy_change_is_the_same(reg):
    reg.ok("policy", "activate", "sesame")
    result = reg.run("check", ALICE, "transport.bike_share", "--at", "2026-03-01", "--json")
    decision = json.loads(result.stdout)
    replay = reg.run("replay", decision["decision_id"], "--json")
    assert json.loads(replay.stdout)["same"] is True
    assert replay.exit_code == 0


# -- verify and void ---------------------------------------------------------------------------


def test_verify_is_ok_on_a_fresh_registry(reg):
    result = reg.json("verify")
    assert result["ok"] is True
    assert result["size"] == 1
    assert result["root"] == reg.json("root")["root"]
    assert result["problems"] == []


def test_verify_fails_after_an_entry_is_altered_in_the_database(reg):
    reg.ingest(ticket())
    assert reg.json("verify")["ok"] is True
    with sqlite3.connect(reg.db) as conn:
        conn.execute("DROP TRIGGER entries_no_update")
        changed = conn.execute(
            "UPDATE entries SET body = replace(body, 'speeding', 'parking') WHERE seq = 1"
        ).rowcount
        body = conn.execute("SELECT body FROM entries WHERE seq = 1").fetchone()[0]
    conn.close()
    assert changed == 1 and '"parking"' in body
    result = reg.json("verify", code=1)
    assert result["ok"] is False
    assert result["size"] == 2
    assert {"kind": "modified", "entry": 1} in [{k: p[k] for k in ("kind", "entry")} for p in result["problems"]]


def test_verify_deep_recomputes_the_standings_and_names_an_edited_one(china):
    assert china.check("transport.rail.high_speed", "2026-03-01")[0] == 3  # denied
    deep = china.json("verify", "--deep")
    assert (deep["ok"], deep["standings"], deep["decisions"]) == (True, 1, 1)
    with sqlite3.connect(china.db) as conn:
        (subject, body), = conn.execute("SELECT subject, body FROM standings").fetchall()
        edited = json.loads(body)
        edited["measures"] = []
        conn.execute("UPDATE standings SET body = ? WHERE subject = ?", (json.dumps(edited), subject))
    conn.close()
    assert china.check("transport.rail.high_speed", "2026-03-01")[0] == 0  # the edit allows it now
    assert china.json("verify")["ok"] is True  # a standing is derived: only --deep recomputes it
    result = china.json("verify", "--deep", code=1)
    assert [(p["kind"], p["subject"]) for p in result["problems"]] == [("standing", subject)]
    text = china.run("verify", "--deep")
    assert text.exit_code == 1
    assert text.stdout.splitlines() == [
        "NOT OK: 1 problem(s) in 2 entries, 2 decisions and 1 audit records",
        f"  the materialized standing of {subject} differs from the fold of its entries (measures)"]


def test_root_publish_writes_a_tree_head_that_verify_against_checks(reg):
    reg.ingest(ticket("t1"))
    published = reg.folder / "head.json"
    reg.ok("root", "--publish", str(published))
    head = json.loads(published.read_text())
    assert set(head) == {"format", "size", "root", "decisions", "audit", "published_at", "published_by"}
    assert (head["format"], head["size"], head["root"]) == ("socialcredit-tree-head/1", 2, reg.json("root")["root"])
    assert head["audit"]["count"] == 1 and len(head["audit"]["head"]) == 64
    assert head["decisions"]["count"] == 0 and head["published_by"].startswith("cli:")
    assert json.loads(reg.ok("root", "--publish").stdout)["root"] == head["root"]  # to standard output
    reg.ingest(ticket("t2"))
    result = reg.json("verify", "--against", str(published))
    assert (result["ok"], result["against"], result["size"]) == (True, 2, 3)
    assert reg.ok("verify", "--against", f"2:{head['root']}").stdout.strip().endswith(
        "extends the published tree head of size 2")
    with sqlite3.connect(reg.db) as conn:  # cut the ledger back to entry #0, checkpoints and all
        conn.execute("DROP TRIGGER entries_no_delete")
        conn.execute("DELETE FROM entries WHERE seq >= 1")
        conn.execute("DELETE FROM checkpoints WHERE size >= 2")
    conn.close()
    assert reg.json("verify")["ok"] is True  # consistent: verify alone cannot see a cut
    cut = reg.json("verify", "--against", str(published), code=1)
    assert [p["kind"] for p in cut["problems"]] == ["published"]
    assert "was published, but the ledger's last checkpoint is at size 1" in cut["problems"][0]["message"]


@pytest.mark.parametrize("against, message", [
    ("nowhere.json", "error: nowhere.json: no such file (--against takes a file from `root --publish`, or SIZE:ROOT)"),
    ("2:abc", "error: --against takes a file written by `socialcredit root --publish` (or `root --json`), or "
              "SIZE:ROOT (a size, a colon and 64 hex digits); got '2:abc'"),
])
def test_verify_against_something_that_is_no_tree_head_fails_in_one_line_with_status_2(reg, against, message):
    result = reg.run("verify", "--against", against)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [message]


def test_root_with_a_file_but_no_publish_fails_in_one_line(reg):
    result = reg.run("root", "head.json")
    assert (result.exit_code, result.stderr.strip()) == (2, "error: head.json: a file is written only with --publish")


def test_prove_on_a_ledger_that_lost_an_entry_fails_in_one_line_with_status_1(reg):
    reg.ingest(ticket("t1"), ticket("t2"), ticket("t3"))
    assert reg.json("prove", "2")["size"] == 4
    with sqlite3.connect(reg.db) as conn:
        conn.execute("DROP TRIGGER entries_no_delete")
        conn.execute("DELETE FROM entries WHERE seq = 1")
    conn.close()
    result = reg.run("prove", "2")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.strip().splitlines() == [
        "error: the ledger is missing stored hashes: asked for the leaf hashes of entries #0 to #3, got 3 of 4; "
        "run `socialcredit verify`"]


def test_void_cancels_an_event_and_the_standing_goes_back(reg):
    reg.ingest(ticket())
    assert reg.standing(ALICE, "--at", "2026-03-01")["score"] == 995
    result = reg.json("void", "1", "--reason", "reported about the wrong person")
    assert (result["cancels"], result["void_entry"], result["size"]) == (1, 2, 3)
    assert reg.standing(ALICE, "--at", "2026-03-01")["score"] == 1000
    explained = reg.json("explain", ALICE, "--at", "2026-03-01")
    cancelled = [item for item in explained["entries"] if item["effects"][0]["status"] == "voided"]
    assert [(item["entry"], item["type"], item["occurred_at"][:10]) for item in cancelled] == [
        (1, "traffic.violation", "2026-01-10")]
    assert cancelled[0]["effects"][0]["text"] == (
        "Cancelled by record #2: reported about the wrong person. It no longer counts.")


def test_void_lifts_a_listing(china):
    assert china.check("transport.air", "2026-03-01")[0] == 3
    china.ok("void", "1", "--reason", "listed by mistake")
    assert china.check("transport.air", "2026-03-01")[0] == 0


# -- policy ------------------------------------------------------------------------------------


def test_policy_show_json_of_the_policy_in_force_and_of_a_pack(reg):
    shown = reg.json("policy", "show")
    assert shown["policy"]["id"] == "rongcheng"
    assert len(shown["digest"]) == 64
    assert "traffic.violation" in shown["event_types"]
    assert {t["id"] for t in shown["tiers"]} == {"AAA", "AA", "A", "B", "C", "D"}
    assert reg.json("policy", "show", "sesame")["policy"]["id"] == "sesame"


def test_policy_lint_names_the_cross_context_bike_share_perk_of_rongcheng(reg):
    result = reg.json("policy", "lint", "rongcheng")
    cross = [f for f in result["findings"] if f["code"] == "cross-context"]
    assert any("transport.bike_share" in f["message"] for f in cross)
    assert result["summary"]["warning"] >= 1
    assert result["policy"]["id"] == "rongcheng"


def test_policy_list_names_every_shipped_pack(reg):
    listed = reg.json("policy", "list")
    assert [p["id"] for p in listed] == pack_names()
    assert {"china-judgment-defaulters", "rongcheng", "sesame"} <= {p["id"] for p in listed}
    text = reg.ok("policy", "list").stdout
    assert "rongcheng 2026.1: Rongcheng points pilot" in text


def test_policy_activate_puts_a_new_pack_in_force(reg):
    result = reg.json("policy", "activate", "sesame")
    assert result["policy"]["id"] == "sesame"
    assert (result["entry"], result["size"]) == (1, 2)
    assert reg.standing(ALICE)["policy"]["id"] == "sesame"  # now: after the activation
    assert reg.json("policy", "show")["policy"]["id"] == "sesame"


def _cells(text: str) -> list[list[str]]:
    """The cells of every table line of Rich's output, stripped (`│ a │ b │` → ["a", "b"])."""
    return [[cell.strip() for cell in line.strip().strip("│").split("│")]
            for line in text.splitlines() if line.startswith("│")]


def test_policy_show_has_an_event_type_table_durations_in_words_and_readable_conditions(reg):
    text = reg.ok("policy", "show", "china-judgment-defaulters").stdout
    rows = _cells(text)
    listed = rows.index(["court.judgment_unfulfilled", "court",
                         "A court lists a judgment debtor as a judgment defaulter (dishonest person subject "
                         "to enforcement)", "case_id: string (required, max length 100)"])
    # Further attributes continue the row, one a line.
    assert rows[listed + 1][:3] == ["", "", ""]
    assert rows[listed + 1][3].startswith("trigger: string (required, values refuses_to_pay, obstruction, ")
    assert ["", "", "", "amount: number (min 0)"] in rows[listed + 1:listed + 4]
    assert ["tax.a_grade_rating", "tax",
            "The tax authority rates an organization A (score 90 or more) for a tax year (organizations only)",
            "tax_year: integer (required, min 2000 max 2100)"] in rows
    # Lists: enter triggers with their term, leave triggers with their waiting period, extensions.
    assert ["enter", "court.judgment_unfulfilled", "trigger refuses_to_pay", "no term: until a leave event"] in rows
    assert ["enter", "court.judgment_unfulfilled",
            "trigger obstruction, fake_litigation, asset_reporting, spending_order, settlement_refusal",
            "for 2 years"] in rows
    assert ["leave", "court.judgment_fulfilled", "any", "at once"] in rows
    assert ["leave", "credit.repair_approved", "severity serious", "not before 1 year on the list"] in rows
    assert ["extend", "court.listing_extended", "any", "by years × 1 year"] in rows
    assert "one listing per case_id; at most 5 years in all, extensions included" in text
    assert ["jd-no-flights", "list judgment-defaulters", "transport.air", "deny"] in rows
    # A policy of lists only has no rules table, and says so.
    assert "No scoring rules: this policy works through lists." in text
    assert not any(line.startswith("Rules") for line in text.splitlines())
    assert ["record", "Record (lists only, no score)", "sum", "1", ""] in rows
    assert text.rstrip().endswith("Machine-readable: socialcredit policy show china-judgment-defaulters --json")


def test_policy_show_words_rules_tiers_and_measures_of_the_score_packs(reg):
    rows = _cells(reg.ok("policy", "show").stdout)  # the policy in force: rongcheng
    assert ["traffic-ticket", "traffic.violation", "any", "-5", "1 year", ""] in rows
    assert ["volunteering", "civic.volunteering", "any", "+5", "1 year", "2 a month"] in rows
    assert ["drunk-driving", "traffic.drunk_driving", "any", "score at most 849", "2 years", ""] in rows
    assert ["bike-share-deposit-free", "tier AAA, AA, A", "transport.bike_share", "deposit_free"] in rows
    sesame = _cells(reg.ok("policy", "show", "sesame").stdout)
    assert ["bike-share-deposit-free", "score at least 600 unless on court-defaulters", "transport.bike_share",
            "deposit_free"] in sesame
    assert ["court-default-mark", "court.judgment_unfulfilled", "any", "-60 credit_history",
            "while on court-defaulters, then 5 years", ""] in sesame
    assert ["credit_history", "Credit history", "sum", "0.35", "starts at 35; range 0 to 100"] in sesame
    nosedive = _cells(reg.ok("policy", "show", "nosedive").stdout)
    assert ["rating", "Rating", "rating_mean", "1",
            "prior 3 (weight 5); window last 100 ratings; all categories; range 1 to 5"] in nosedive
    assert ["no-standby-below-4-2", "score below 4.2", "transport.air.standby", "deny"] in nosedive
    assert ["penalty-mode", "official.penalty", "any", "-1; negative ratings weigh ×2", "1 day", ""] in nosedive


def test_policy_show_prints_policy_text_as_text_not_rich_markup(reg):
    text = load_policy("rongcheng").text.replace(
        'description = "A traffic ticket"', 'description = "A traffic ticket [as reported]"')
    path = reg.folder / "bracketed.toml"
    path.write_text(text, encoding="utf-8")
    rows = _cells(reg.ok("policy", "show", str(path)).stdout)
    assert ["traffic.violation", "traffic", "A traffic ticket [as reported]",
            "offence: string (max length 100)"] in rows


def test_policy_show_in_80_columns_keeps_every_event_type_whole(reg):
    result = reg.runner.invoke(app, ["--db", reg.url, "policy", "show", "sesame"], env={**ENV, "COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    first_cells = [row[0] for row in _cells(result.stdout)]
    for name in load_policy("sesame").event_types:
        assert name in first_cells, name


def test_policy_activate_prints_the_lint_summary_and_the_event_types_that_stop_counting(reg):
    reg.ingest(ticket())
    counts = summarize(lint(load_policy("sesame")))
    result = reg.run("policy", "activate", "sesame")
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stderr.splitlines() == [
        f"lint: {counts['error']} errors, {counts['warning']} warnings, {counts['info']} info — "
        "see `socialcredit policy lint sesame`",
        "warning: 1 recorded event type stops counting under sesame: traffic.violation",
    ]
    assert result.stdout == "Policy sesame 2026.1 in force from entry #2.\n"
    assert reg.json("policy", "show")["policy"]["id"] == "sesame"  # the warning did not stop it


def test_policy_activate_json_has_the_lint_summary_and_the_dropped_event_types(reg):
    reg.ingest(ticket(), late_payment())
    result = reg.json("policy", "activate", "sesame")
    assert result["lint"] == summarize(lint(load_policy("sesame")))
    assert result["dropped_event_types"] == ["traffic.violation", "utility.late_payment"]
    assert result["policy"]["id"] == "sesame"
    back = reg.run("policy", "activate", "rongcheng", "--json")
    assert json.loads(back.stdout)["dropped_event_types"] == []
    assert "stop counting" not in back.stderr and "stops counting" not in back.stderr


# -- audit -------------------------------------------------------------------------------------


def test_audit_json_shows_a_standing_read_with_the_subjects_pseudonym(reg):
    subject = reg.standing(ALICE, "--at", "2026-03-01")["subject"]
    result = reg.json("audit")
    assert result["subject"] is None
    [read] = [e for e in result["entries"] if e["action"] == "standing"]
    assert read["subject"] == subject
    assert read["detail"] == {"at": "2026-03-01T00:00:00Z", "known_at": None}
    assert read["principal"].startswith("cli:")
    # Reading the audit log is audited too: the next read shows the first one, newest first.
    again = reg.json("audit", "--limit", "1")
    assert [(e["action"], e["subject"], e["detail"]) for e in again["entries"]] == [("audit", None, {"limit": 100})]


def test_audit_of_a_subject_shows_only_reads_about_them(reg):
    alice = reg.standing(ALICE, "--at", "2026-03-01")["subject"]
    bob = reg.standing("bob", "--at", "2026-03-01")["subject"]
    reg.json("explain", ALICE, "--at", "2026-03-01")
    result = reg.json("audit", ALICE)
    assert result["subject"] == alice
    assert [(e["action"], e["subject"]) for e in result["entries"]] == [("explain", alice), ("standing", alice)]
    assert [e["action"] for e in reg.json("audit", "bob")["entries"]] == ["standing"]
    assert reg.json("audit", "bob")["entries"][0]["subject"] == bob
    # Both reads of the audit log about bob were logged, against bob.
    assert [e["action"] for e in reg.json("audit", "bob")["entries"]] == ["audit", "audit", "standing"]


def test_audit_human_output_is_a_table_with_times_to_the_second(reg):
    subject = reg.standing(ALICE, "--at", "2026-03-01")["subject"]
    rows = _cells(reg.ok("audit").stdout)
    [(time, principal, action, shown, detail), activation] = rows  # newest first: the read, then init's activation
    assert activation[2] == "activate"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", time)
    assert principal.startswith("cli:")
    assert (action, shown, detail) == ("standing", subject[:12] + "…", "at 2026-03-01T00:00:00Z")


def test_audit_with_a_bad_kind_is_a_one_line_error(reg):
    result = reg.run("audit", ALICE, "--kind", "robot")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: --kind must be person or organization, got 'robot'"


# -- demo --------------------------------------------------------------------------------------

DEMO = ("demo", "--residents", "200", "--businesses", "10", "--seed", "3", "--as-of", "2026-06-01")


def _demo(folder: Path) -> dict:
    folder.mkdir()
    return Registry(folder).json(*DEMO)


@pytest.fixture(scope="module")
def two_demos(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    return _demo(base / "one"), _demo(base / "two")


def test_demo_with_a_seed_gives_the_same_tiers_lists_and_scores(two_demos):
    one, two = two_demos
    assert one["subjects"] == 210
    assert sum(one["tiers"].values()) == 210
    assert one["tiers"] == two["tiers"]
    assert one["lists"] == two["lists"]
    assert one["score"] == two["score"]
    assert one["ingest"]["events"] == two["ingest"]["events"] > 0


def test_demo_with_a_seed_shows_the_same_sample_resident_and_checks(two_demos):
    one, two = two_demos
    assert (one["sample"]["ref"], one["sample"]["score"]) == (two["sample"]["ref"], two["sample"]["score"])
    files = [Path(demo["references_file"]).read_text(encoding="utf-8").splitlines() for demo in (one, two)]
    assert files[0] == files[1] and files[0]
    assert [(files[0][c["references_line"] - 1], c["service"], c["allowed"]) for c in one["checks"]] == \
        [(files[1][c["references_line"] - 1], c["service"], c["allowed"]) for c in two["checks"]]


def test_demo_shows_no_subject_id_in_full_and_its_hint_works(tmp_path):
    url = f"sqlite:///{tmp_path}/town.db"
    runner = CliRunner()
    shown = runner.invoke(app, ["--db", url, "demo", "--residents", "60", "--businesses", "10", "--seed", "3"],
                          env={**ENV, "COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    references = (tmp_path / "town.db.subjects").read_text(encoding="utf-8").splitlines()
    assert references and oct((tmp_path / "town.db.subjects").stat().st_mode & 0o777) == "0o600"
    assert not [ref for ref in references if ref in shown.output]  # masked everywhere, the hint included
    lines = shown.output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("Try:"))
    hint = " ".join(line.strip() for line in takewhile(str.strip, lines[start:]))  # wrapped in a deep folder
    assert f"explain @{tmp_path}/town.db.subjects" in hint
    explained = runner.invoke(app, ["--db", url, "explain", f"@{tmp_path}/town.db.subjects",
                                    *(["--kind", "organization"] if "--kind organization" in hint else [])], env=ENV)
    assert explained.exit_code == 0, explained.output
    assert " under rongcheng 2026.1" in explained.output.splitlines()[0]  # that subject's record, explained


def test_a_service_no_measure_knows_is_allowed_with_a_warning(china):
    typo = china.run("check", DEFAULTER, "transprt.air", "--at", "2026-03-01", "--json")
    assert typo.exit_code == 0
    assert json.loads(typo.stdout)["service_known"] is False
    assert "warning: no measure of the china-judgment-defaulters policy covers transprt.air" in typo.stderr
    known = china.run("check", DEFAULTER, "transport.rail.regular", "--at", "2026-03-01", "--json")
    assert json.loads(known.stdout)["service_known"] is True and "warning" not in known.stderr


def test_a_demo_whose_year_ends_after_today_runs_on_its_own_clock(tmp_path):
    # Its events are dated up to its --as-of: in the future for the real clock, not for the town's.
    result = Registry(tmp_path).json("demo", "--residents", "20", "--businesses", "2", "--seed", "3",
                                     "--as-of", "2199-06-01")
    assert result["as_of"] == "2199-06-01T00:00:00Z"
    assert result["ingest"]["events"] > 0
