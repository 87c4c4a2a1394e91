"""Every user mistake: a non-zero exit, one line on stderr, no traceback, nothing half-written.

"One line" means one line that starts with `error:` or names the file and line. CliRunner
catches exceptions instead of printing them, so "no traceback" is checked twice: the output
has none, and the only exception seen is the SystemExit of a deliberate exit.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from socialcredit.cli import app

from conftest import sqlite_from_template
from socialcredit.instants import format_instant, now_us

ENV = {
    "SOCIALCREDIT_DB": None,
    "SOCIALCREDIT_KEY": None,
    "SOCIALCREDIT_KEY_FILE": None,
    "SOCIALCREDIT_KEY_VERSION": None,
    "SOCIALCREDIT_MAX_CLOCK_SKEW": None,
    "COLUMNS": "1000",  # see test_an_ingest_error_stays_on_one_line_in_80_columns for wrapping
}

VALID_ID = "11010519491231002X"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# -- helpers -----------------------------------------------------------------------------------


def cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env={**ENV, **(env or {})})


class Registry:
    def __init__(self, folder: Path):
        self.folder = folder
        self.db = folder / "r.db"
        self.url = f"sqlite:///{self.db}"

    def run(self, *args: str, env: dict | None = None):
        return cli("--db", self.url, *args, env=env)

    def size(self) -> int:
        result = self.run("root", "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["size"]

    def write(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return path

    def ingest_lines(self, *lines: str, env: dict | None = None):
        path = self.write("events.jsonl", "".join(line + "\n" for line in lines))
        return path, self.run("ingest", str(path), env=env)


@pytest.fixture
def reg(tmp_path) -> Registry:
    registry = Registry(tmp_path)
    sqlite_from_template(registry.db)  # the schema, migrated once per test run
    result = registry.run("init")
    assert result.exit_code == 0, result.output
    return registry


def error_line(result) -> str:
    """The one line a user mistake prints on stderr (after checking every other promise)."""
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # no uncaught exception
    assert "Traceback" not in result.output
    lines = [line for line in ANSI.sub("", result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def assert_user_error(result, *fragments: str) -> str:
    line = error_line(result)
    assert line.startswith("error:"), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def event(key: str = "k1", **fields) -> dict:
    item = {"subject": "alice", "type": "traffic.violation", "occurred_at": "2026-01-10T08:00:00Z",
            "provider": "police", "key": key}
    item.update(fields)
    return {k: v for k, v in item.items() if v is not None}


GOOD = json.dumps(event("good-1", attributes={"offence": "speeding"}))


# -- bad events: the whole file is refused -----------------------------------------------------

BAD_EVENTS = {
    "malformed JSON": ('{"subject": "alice", "type": "traffic.violation"', "not valid JSON"),
    "unknown event type": (json.dumps(event(type="no.such_event")), "unknown event type 'no.such_event'"),
    "attribute outside the schema": (
        json.dumps(event(attributes={"colour": "red"})), "attribute 'colour' is not in the schema"),
    "attribute of the wrong type": (
        json.dumps(event(type="civic.volunteering", attributes={"hours": "many"})), "must be a number"),
    "string not among the allowed values": (
        json.dumps(event(type="utility.late_payment", attributes={"utility": "oil"})), "must be one of"),
    "occurred_at that does not parse": (json.dumps(event(occurred_at="yesterday")), "occurred_at"),
    "occurred_at without a time zone": (
        json.dumps(event(occurred_at="2026-01-10T08:00:00")), "no time zone"),
    "bad unified social credit code": (
        json.dumps(event(subject="91350100M000100Y44", subject_kind="organization")), "wrong check character"),
    "unknown subject_kind": (json.dumps(event(subject_kind="robot")), "subject_kind"),
    "missing key": (json.dumps(event(key=None)), "missing 'key'"),
    "not an object": ('["alice", "traffic.violation"]', "expected a JSON object"),
    "unknown field": (json.dumps(event(colour="red")), "unknown field 'colour'"),
}


@pytest.mark.parametrize("bad, fragment", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_a_bad_event_refuses_the_file_names_its_line_and_writes_nothing(reg, bad, fragment):
    path, result = reg.ingest_lines(GOOD, bad)
    line = error_line(result)
    assert line.startswith(f"{path} line 2: "), line
    assert fragment in line, line
    assert "Nothing written" in result.stdout
    assert reg.size() == 1  # not even the good first line went in


# -- CSV and empty files -----------------------------------------------------------------------

CSV_HEADER = "subject,type,occurred_at,provider,key\n"
CSV_GOOD = "alice,traffic.violation,2026-01-10T08:00:00Z,police,c1\n"


def _ingest_csv(reg, text: str):
    path = reg.write("events.csv", text)
    return path, reg.run("ingest", str(path))


def test_a_csv_header_that_names_a_column_twice_is_refused_naming_it(reg):
    # Every row would keep only one of the two cells; which one was a guess (the last).
    path, result = _ingest_csv(reg, "subject,subject,type,occurred_at,provider,key\n"
                                    "bob,alice,traffic.violation,2026-01-10T08:00:00Z,police,c1\n")
    assert error_line(result) == f"{path} line 1: the header has two columns named 'subject'"
    assert reg.size() == 1


@pytest.mark.parametrize("rows, line", [
    (CSV_GOOD + '"bob,traffic.violation,2026-01-10T08:00:00Z,police,c2\n' + CSV_GOOD.replace("c1", "c3"), 3),
    ('alice,traffic.violation,2026-01-10T08:00:00Z,"police\n', 2),  # this one went in, provider "police\n"
])
def test_an_unterminated_quote_in_csv_is_a_one_line_error_naming_its_line(reg, rows, line):
    path, result = _ingest_csv(reg, CSV_HEADER + rows)
    assert error_line(result) == (f"{path} line {line}: a quoted cell that starts on this line is never closed "
                                  '(its closing " is missing)')
    assert reg.size() == 1


def test_a_csv_cell_under_a_column_with_no_name_is_refused(reg):
    path, result = _ingest_csv(reg, CSV_HEADER.replace("\n", ",\n") + CSV_GOOD.replace("\n", ",red\n"))
    assert error_line(result) == f"{path} line 2: column 6 has a value but no name in the header"
    assert reg.size() == 1
    # Trailing commas with nothing under them, as a spreadsheet writes them, are fine.
    _, result = _ingest_csv(reg, CSV_HEADER.replace("\n", ",,\n") + CSV_GOOD.replace("\n", ",,\n"))
    assert result.exit_code == 0, result.output
    assert reg.size() == 2


@pytest.mark.parametrize("name, text", [("empty.jsonl", ""), ("blank.jsonl", "\n   \n\r\n"), ("empty.csv", ""),
                                        ("header-only.csv", CSV_HEADER), ("blank.csv", "\n\n"),
                                        ("empty-rows.csv", CSV_HEADER + ",,,,\n")])
def test_a_file_with_no_events_says_there_is_nothing_to_ingest(reg, name, text):
    path = reg.write(name, text)
    result = reg.run("ingest", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Nothing to ingest: {path} holds no events; ledger size 1."
    assert result.stderr == ""
    assert reg.size() == 1


def test_an_ingest_error_stays_on_one_line_in_80_columns(reg):
    _, result = reg.ingest_lines(json.dumps(event(type="utility.late_payment", attributes={"utility": "oil"})),
                                 env={"COLUMNS": "80"})
    line = error_line(result)
    assert line.endswith("got 'oil'")


def test_malformed_json_names_the_column_where_the_line_breaks_off(reg):
    truncated = '{"subject": "alice", "type": "traffic.violation"'
    _, result = reg.ingest_lines(truncated)
    line = error_line(result)
    assert f"column {len(truncated) + 1}" in line, line


def test_a_missing_events_file_is_a_one_line_error(reg):
    result = reg.run("ingest", str(reg.folder / "nope.jsonl"))
    assert_user_error(result, "nope.jsonl", "no such file")
    assert reg.size() == 1


# -- times -------------------------------------------------------------------------------------


def test_an_event_dated_before_1900_is_refused_and_nothing_is_written(reg):
    # 0999 was stored as "999-01-01T00:00:00Z", which nothing reads back: verify failed for good.
    path, result = reg.ingest_lines(GOOD, json.dumps(event("k2", occurred_at="0999-01-01T00:00:00Z")))
    assert error_line(result) == (f"{path} line 2: occurred_at: '0999-01-01T00:00:00Z' is outside the accepted "
                                  "range: times must fall in the years 1900 to 2200 (UTC)")
    assert reg.size() == 1
    assert reg.run("verify").exit_code == 0


@pytest.mark.parametrize("occurred_at", ["1900-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z",
                                         "2026-01-10T08:00:00.000001+08:00"])
def test_an_event_anywhere_in_the_range_is_stored_so_that_verify_reads_it_back(reg, occurred_at):
    _, result = reg.ingest_lines(json.dumps(event(occurred_at=occurred_at)))
    assert result.exit_code == 0, result.output
    verified = reg.run("verify", "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["ok"] is True


def test_an_event_dated_in_the_future_is_refused_naming_the_line_and_the_cause(reg):
    path, result = reg.ingest_lines(GOOD, json.dumps(event("k2", occurred_at="2030-01-01T00:00:00+08:00")))
    line = error_line(result)
    assert line.startswith(f"{path} line 2: occurred_at: 2029-12-31T16:00:00Z is in the future: the registry's "
                           "clock reads "), line
    assert line.endswith(" and accepts times at most 5 minutes ahead (SOCIALCREDIT_MAX_CLOCK_SKEW)"), line
    assert reg.size() == 1


def test_the_allowed_clock_skew_is_set_by_SOCIALCREDIT_MAX_CLOCK_SKEW(reg):
    soon = format_instant(now_us() + 10 * 60_000_000)
    _, refused = reg.ingest_lines(json.dumps(event(occurred_at=soon)))
    assert "in the future" in error_line(refused)
    assert reg.size() == 1
    _, accepted = reg.ingest_lines(json.dumps(event(occurred_at=soon)), env={"SOCIALCREDIT_MAX_CLOCK_SKEW": "PT1H"})
    assert accepted.exit_code == 0, accepted.output
    assert reg.size() == 2


@pytest.mark.parametrize("skew, cause", [("soon", "is not an ISO 8601 duration"),
                                         ("P1M", "give the skew in days, hours, minutes or seconds")])
def test_a_clock_skew_that_is_not_an_exact_duration_is_a_one_line_error(reg, skew, cause):
    _, result = reg.ingest_lines(GOOD, env={"SOCIALCREDIT_MAX_CLOCK_SKEW": skew})
    assert_user_error(result, f"SOCIALCREDIT_MAX_CLOCK_SKEW={skew!r}", cause)
    assert reg.size() == 1


# -- references to subjects --------------------------------------------------------------------


def test_an_invalid_resident_id_is_refused_not_taken_as_a_username(reg):
    wrong_check = "110105194912310021"  # 18 characters shaped like an ID, wrong check character
    path, result = reg.ingest_lines(json.dumps(event(subject=wrong_check)))
    line = error_line(result)
    assert line.startswith(f"{path} line 1: ")
    assert "resident identity number" in line and "wrong check character" in line
    assert wrong_check not in result.output  # the number is masked in the message
    assert "110*************21" in line
    assert reg.size() == 1


def test_standing_of_an_invalid_resident_id_is_refused_and_masked(reg):
    result = reg.run("standing", "110105194912310021")
    assert_user_error(result, "wrong check character")
    assert "110105194912310021" not in result.output


def test_seventeen_digits_are_refused_as_an_id_with_a_character_missing(reg):
    # A resident ID with its check character dropped was scored as a clean username.
    dropped = VALID_ID[:-1]
    path, result = reg.ingest_lines(GOOD, json.dumps(event("k2", subject=dropped)))
    line = error_line(result)
    assert line == (f"{path} line 2: 110************02 is neither a valid identifier nor a username: it looks like "
                    "a resident identity number with a character missing (it has 18: 17 digits, then a digit or X)")
    assert dropped not in result.output
    assert reg.size() == 1


@pytest.mark.parametrize("mistyped", [VALID_ID[:-1], "110105 19491231002X", "l" + VALID_ID[1:]])
def test_standing_of_a_mistyped_id_is_refused_with_a_hint_and_masked(reg, mistyped):
    line = assert_user_error(reg.run("standing", mistyped), "is neither a valid identifier nor a username",
                             "looks like a resident identity number")
    assert VALID_ID[3:-2] not in line


@pytest.mark.parametrize("name, cause", [
    ("!!!", "username '!!!' must start with a letter"),
    ("bob@example.com", "username 'bob@example.com' has a character that is not allowed at position 4: '@'"),
])
def test_a_username_outside_the_documented_shape_has_no_standing(reg, name, cause):
    assert_user_error(reg.run("standing", name), cause, "a letter, then letters, digits, '.', '_' or '-'")
    path, result = reg.ingest_lines(json.dumps(event(subject=name)))
    assert error_line(result).startswith(f"{path} line 1: username {name!r}")
    assert reg.size() == 1


def test_a_valid_resident_id_is_never_stored_in_clear(reg):
    path, result = reg.ingest_lines(json.dumps(event(subject=VALID_ID, attributes={"offence": "speeding"})))
    assert result.exit_code == 0, result.output
    for args in (("standing", VALID_ID), ("explain", VALID_ID), ("check", VALID_ID, "utility.heating")):
        assert reg.run(*args).exit_code == 0
    stored = b"".join(p.read_bytes() for p in sorted(reg.folder.glob("r.db*")))
    assert b"1101051949123100" not in stored  # not even the first 16 digits
    assert VALID_ID.encode() not in stored and VALID_ID.lower().encode() not in stored


@pytest.mark.parametrize("field, value, masked", [
    ("key", f"loan-{VALID_ID}-2026", "loan-110*************2X-2026"),
    ("provider", "bank-91350100M000100Y43", "bank-913*************43"),
])
def test_an_identifier_in_a_key_or_provider_is_refused_and_never_stored(reg, field, value, masked):
    # Keys and providers are stored as given: a raw ID there would sit beside the pseudonym.
    bad = {**event("k2"), field: value}
    path, result = reg.ingest_lines(GOOD, json.dumps(bad))
    line = error_line(result)
    assert line.startswith(f"{path} line 2: {field} {masked!r} contains what looks like a "), line
    assert value not in result.output
    assert reg.size() == 1


def test_an_identifier_in_the_provider_option_is_refused(reg):
    path = reg.write("events.jsonl", json.dumps(event(provider=None)) + "\n")
    result = reg.run("ingest", str(path), "--provider", f"clinic-{VALID_ID}")
    assert_user_error(result, "provider 'clinic-110*************2X' contains what looks like a resident identity")
    assert VALID_ID not in result.output
    assert reg.size() == 1


# -- policies ----------------------------------------------------------------------------------

POLICY_HEAD = """\
[policy]
id = "bad"
version = "1"
title = "a policy that does not validate"

[scale]
base = 1000
min = 0
max = 2000

[[dimensions]]
id = "conduct"
label = "Conduct"

[event_types."traffic.violation"]
domain = "traffic"
description = "a traffic ticket"
"""

RULE_WITHOUT_LIFETIME = """
[[rules]]
id = "ticket"
event = "traffic.violation"
describe = "a traffic ticket"
dimension = "conduct"
points = -5
"""


def test_init_with_a_policy_that_does_not_validate_names_the_file_and_the_place(tmp_path):
    registry = Registry(tmp_path)
    policy = registry.write("bad.toml", POLICY_HEAD + RULE_WITHOUT_LIFETIME)
    result = registry.run("init", "--policy", str(policy))
    assert_user_error(result, "bad.toml", "rules[0]", "lifetime")
    assert not registry.db.exists()
    assert not (tmp_path / "r.db.key").exists()


def test_init_with_a_toml_syntax_error_names_the_file_and_the_line(tmp_path):
    registry = Registry(tmp_path)
    policy = registry.write("broken.toml", '[policy\nid = "x"\n')
    result = registry.run("init", "--policy", str(policy))
    assert_user_error(result, "broken.toml", "not valid TOML", "line 1")
    assert not registry.db.exists()
    assert not (tmp_path / "r.db.key").exists()


def test_init_with_an_unknown_pack_lists_the_packs(tmp_path):
    result = Registry(tmp_path).run("init", "--policy", "atlantis")
    assert_user_error(result, "atlantis", "rongcheng")
    assert not (tmp_path / "r.db").exists()


def test_policy_activate_of_a_bad_file_writes_nothing(reg):
    policy = reg.write("bad.toml", POLICY_HEAD + RULE_WITHOUT_LIFETIME)
    assert_user_error(reg.run("policy", "activate", str(policy)), "bad.toml", "rules[0]")
    assert reg.size() == 1


# -- the database and the key ------------------------------------------------------------------


def test_a_missing_database_says_to_run_init(tmp_path):
    result = Registry(tmp_path).run("standing", "alice")
    assert_user_error(result, "r.db init`")
    assert list(tmp_path.iterdir()) == []  # nothing created


def _other_programs_db(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recipes (name TEXT, minutes INTEGER)")
    conn.execute("INSERT INTO recipes VALUES ('soup', 30)")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("command", [("standing", "alice"), ("init",)])
def test_another_programs_sqlite_file_is_a_one_line_error(tmp_path, command):
    other = tmp_path / "r.db"
    _other_programs_db(other)
    result = Registry(tmp_path).run(*command)
    assert_user_error(result, str(other))
    assert not (tmp_path / "r.db.key").exists()


@pytest.mark.parametrize("command", [("standing", "alice"), ("init",)])
def test_another_programs_sqlite_file_is_left_unchanged(tmp_path, command):
    other = tmp_path / "r.db"
    before = _other_programs_db(other)
    Registry(tmp_path).run(*command)
    assert other.read_bytes() == before


@pytest.mark.parametrize("command", [("standing", "alice"), ("init",)])
def test_a_file_that_is_not_sqlite_is_a_one_line_error_and_left_unchanged(tmp_path, command):
    text = tmp_path / "r.db"
    text.write_text("shopping list: eggs, flour\n")
    before = text.read_bytes()
    result = Registry(tmp_path).run(*command)
    assert_user_error(result, "not a SQLite database")
    assert text.read_bytes() == before
    assert not (tmp_path / "r.db.key").exists()


def test_a_missing_key_file_is_a_one_line_error(reg):
    (reg.folder / "r.db.key").unlink()
    assert_user_error(reg.run("standing", "alice"), "r.db.key", "not found")


def test_a_key_file_readable_by_others_is_refused(reg):
    key = reg.folder / "r.db.key"
    key.chmod(0o644)
    try:
        assert_user_error(reg.run("standing", "alice"), "r.db.key", "0644", "chmod 600")
    finally:
        key.chmod(0o600)
    assert reg.size() == 1


def test_the_key_of_another_registry_is_refused(reg, tmp_path_factory):
    other = Registry(tmp_path_factory.mktemp("other"))
    assert other.run("init").exit_code == 0
    result = reg.run("--key-file", str(other.folder / "r.db.key"), "standing", "alice")
    assert_user_error(result, "does not belong to this registry")


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize("at", ["yesterday", "2026-13-01", "2026-03-01T08:00:00", "2300-01-01", "1899-12-31"])
def test_a_bad_at_is_a_one_line_error(reg, at):
    assert_user_error(reg.run("standing", "alice", "--at", at), repr(at))


@pytest.mark.parametrize("known_at", ["0", "2", "99"])
def test_known_at_out_of_range_is_a_one_line_error(reg, known_at):
    assert_user_error(reg.run("standing", "alice", "--known-at", known_at),
                      "between 1 and the ledger size 1", f"got {known_at}")


@pytest.mark.parametrize("service", ["Transport.Air", "transport..air", "transport.air.", "transport air"])
def test_check_with_a_malformed_service_name_is_a_one_line_error(reg, service):
    assert_user_error(reg.run("check", "alice", service), "is not a service name")


def test_check_with_an_unknown_kind_is_a_one_line_error(reg):
    assert_user_error(reg.run("check", "alice", "transport.air", "--kind", "robot"), "--kind")


def test_replay_of_an_unknown_decision_is_a_one_line_error(reg):
    assert_user_error(reg.run("replay", "d-0000000000-1"), "no decision 'd-0000000000-1'")


def test_void_of_an_entry_that_is_not_an_event_is_a_one_line_error(reg):
    assert_user_error(reg.run("void", "0", "--reason", "oops"), "entry #0 is not an event")
    assert_user_error(reg.run("void", "7", "--reason", "oops"), "entry #7 is not an event")
    assert reg.size() == 1


def test_serve_with_an_unknown_log_level_is_a_one_line_error(reg):
    assert_user_error(reg.run("serve", "--log-level", "loud", "--port", "9"), "--log-level must be one of", "'loud'")
