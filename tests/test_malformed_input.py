"""No traceback for any input: a corpus of malformed events, and Hypothesis over the event schema.

Every case goes through the CLI (`socialcredit ingest FILE`, or `--at` for the times) on SQLite
and on PostgreSQL, and must end as a user mistake does: exit status 2, exactly one line on
stderr that names the file and line (or starts with `error:`) and says the cause, a short
excerpt of the value at most (never a resident ID in full), no traceback, nothing written.

The corpus holds what a tester sent: values of the wrong JSON type where text is expected
(0, false, [], {} once ended in StopIteration), lone surrogates (UnicodeEncodeError), JSON
nested 1,000 deep (RecursionError), integers of over 4,300 digits (ValueError), NULs in keys
and providers (PostgreSQL's DataError), CSV cells over 128 KiB; and what is not what it claims
to be: duplicate names, times that are ISO 8601 but not RFC 3339, numbers Python reads but a
provider does not mean (`1_000`, `١٢`), control and bidirectional characters in keys.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as outcome
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from conftest import fresh_database
from test_bad_input import ANSI, ENV, error_line
from socialcredit.cli import app
from socialcredit.instants import TimeOutOfRange, parse_instant
from socialcredit.policy.load import pack_file

VALID_ID = "11010519491231002X"
# An excerpt is at most 40 characters, escaped (a lone surrogate takes 6): a whole message stays short.
LONGEST_LINE = 400

# Rongcheng, and one event type with an attribute of each kind and no bounds, so that the
# numbers are refused for what they are, not for being out of a range.
CENSUS = """
[event_types."civic.census"]
domain = "civic"
description = "A census return"
attributes.household = { type = "integer" }
attributes.area = { type = "number" }
attributes.owner = { type = "boolean" }
attributes.note = { type = "string" }
"""


class Case(NamedTuple):
    name: str
    line: str  # one line of the events file, as written
    error: str  # what the one line on stderr says after "FILE line 1: "


def event(**fields) -> dict:
    item = {"subject": "alice", "type": "traffic.violation", "occurred_at": "2026-01-10T08:00:00Z",
            "provider": "police", "key": "k1"}
    item.update(fields)
    return {name: value for name, value in item.items() if value is not ...}


def census(**attributes) -> dict:
    return event(type="civic.census", attributes=attributes)


def line(value) -> str:
    return json.dumps(value)  # ASCII: a lone surrogate goes into the file as \ud800, as a tester would


# -- the corpus ------------------------------------------------------------------------------------

# JSON values of the wrong type, and how a message names them.
NOT_TEXT = [(0, "0"), (False, "false"), (True, "true"), ([], "an array of 0 items"), ({}, "an object"),
            (1.5, "1.5"), (-7, "-7"), ([[[["deep"]]]], "an array of 1 item"), ({"a": {"b": 1}}, "an object")]

# Characters a key or provider may not hold: stored in clear and shown in listings, they must be
# what they look like.
UNPRINTABLE = [
    ("\x00", "a control character", "U+0000"),
    ("\x1b", "a control character", "U+001B"),
    ("\n", "a control character", "U+000A"),
    ("\t", "a control character", "U+0009"),
    ("\x7f", "a control character", "U+007F"),
    ("\x85", "a control character", "U+0085"),
    ("\u202e", "an invisible formatting character (bidirectional or zero-width)", "U+202E"),
    ("\u2066", "an invisible formatting character (bidirectional or zero-width)", "U+2066"),
    ("\u200b", "an invisible formatting character (bidirectional or zero-width)", "U+200B"),
    ("\ufeff", "an invisible formatting character (bidirectional or zero-width)", "U+FEFF"),
    ("\ud800", "a lone surrogate (half of a UTF-16 pair, which UTF-8 cannot encode)", "U+D800"),
    ("\udfff", "a lone surrogate (half of a UTF-16 pair, which UTF-8 cannot encode)", "U+DFFF"),
    ("\ue000", "a private-use character", "U+E000"),
    ("\u00a0", "a space or line break other than ' '", "U+00A0"),
    ("\u2028", "a space or line break other than ' '", "U+2028"),
]

# What an attribute's text may not hold: a NUL (PostgreSQL refuses it), a lone surrogate (UTF-8
# cannot encode it), a control character a terminal would obey when a review is shown.
UNSTORABLE = [
    ("\x00", "a control character", "U+0000"),
    ("\x07", "a control character", "U+0007"),
    ("\x1b", "a control character", "U+001B"),
    ("\x7f", "a control character", "U+007F"),
    ("\x9b", "a control character", "U+009B"),
    ("\ud83d", "a lone surrogate (half of a UTF-16 pair, which UTF-8 cannot encode)", "U+D83D"),
]

RANGE = "is outside the accepted range: times must fall in the years 1900 to 2200 (UTC)"
NOT_RFC3339 = "is not an RFC 3339 time (expected e.g. 2026-03-01T08:00:00Z)"
# Times that are not RFC 3339, or not in the range: what each one's message says after the quoted time.
BAD_TIMES = [
    ("2026-W02-1T08:00:00Z", "is an ISO week date (give a calendar date, YYYY-MM-DD)"),
    ("2026W021T080000Z", "is an ISO week date (give a calendar date, YYYY-MM-DD)"),
    ("2026-010T08:00:00Z", NOT_RFC3339),  # an ordinal date
    ("20260110T080000Z", NOT_RFC3339),  # ISO 8601's basic format
    ("2026-01-10T08:00Z", NOT_RFC3339),  # no seconds
    ("2026-01-10T08Z", NOT_RFC3339),
    ("2026-01-10 08:00:00Z", NOT_RFC3339),
    ("2026-01-10T08:00:00+0100", NOT_RFC3339),
    ("2026-01-10T08:00:00+01", NOT_RFC3339),
    ("2026-01-10T08:00:00,5Z", NOT_RFC3339),
    ("2026-01-10T08:00:00ZZ", NOT_RFC3339),
    ("2026-01-10T08:00:00Z trailing", NOT_RFC3339),
    ("+2026-01-10T08:00:00Z", NOT_RFC3339),
    ("10000-01-01T00:00:00Z", NOT_RFC3339),
    ("٢٠٢٦-01-10T08:00:00Z", NOT_RFC3339),  # Arabic-Indic digits
    ("２０２６-01-10T08:00:00Z", NOT_RFC3339),  # full-width digits
    ("2026-01-10T08:00:00+01:00:30", "has an offset with seconds (an offset is ±HH:MM)"),
    ("2026-01-10T08:00:00-05:00:00.5", "has an offset with seconds (an offset is ±HH:MM)"),
    ("2026-01-10T08:00:00.1234567Z", "has more than 6 fractional digits (the registry keeps microseconds)"),
    ("2026-01-10T08:00:00.123456789+08:00", "has more than 6 fractional digits (the registry keeps microseconds)"),
    ("2026-01-10T08:00:00", "has no time zone offset (add Z or +08:00)"),
    ("2026-01-10T08:00:00.5", "has no time zone offset (add Z or +08:00)"),
    ("2026-01-10T08:00:00+24:00", "has an offset beyond ±23:59"),
    ("2026-01-10T08:00:00-00:60", "has an offset beyond ±23:59"),
    ("2026-02-30T08:00:00Z", "is not a real date and time (day is out of range for month)"),
    ("2026-13-10T08:00:00Z", "is not a real date and time (month must be in 1..12)"),
    ("2026-01-10T24:00:00Z", "is not a real date and time (hour must be in 0..23)"),
    ("2026-12-31T23:59:60Z", "is not a real date and time (second must be in 0..59)"),
    ("0000-01-01T00:00:00Z", "is not a real date and time (year 0 is out of range)"),
    ("9999-12-31T23:59:59-01:00", RANGE),  # beyond what a datetime holds, in UTC
    ("0001-01-01T00:00:00+01:00", RANGE),  # before it
    ("1899-12-31T23:59:59Z", RANGE),
    ("2201-01-01T00:00:00Z", RANGE),
]
# `--at` also takes a date (midnight UTC).
BAD_DATES = [
    ("9999-12-31", RANGE),
    ("0001-01-01", RANGE),
    ("2026-W02-1", "is not a date (expected YYYY-MM-DD)"),
    ("２０２６-01-10", "is not a date (expected YYYY-MM-DD)"),
    ("2026-02-30", "is not a real date and time (day is out of range for month)"),
]


def _corpus() -> list[Case]:
    cases = []
    for field in ("subject", "type", "occurred_at"):
        what = "text (an RFC 3339 time)" if field == "occurred_at" else "text"
        for value, shown in NOT_TEXT:
            cases.append(Case(f"{field} {json.dumps(value)}", line(event(**{field: value})),
                              f"{field} must be {what}, got {shown}"))
        for value in (None, ""):
            cases.append(Case(f"{field} {json.dumps(value)}", line(event(**{field: value})), f"missing '{field}'"))
        cases.append(Case(f"{field} absent", line(event(**{field: ...})), f"missing '{field}'"))
    for value, shown in NOT_TEXT:
        if value.__class__ is not int:  # a whole number is a case number: its digits are the key
            cases.append(Case(f"key {json.dumps(value)}", line(event(key=value)),
                              f"key must be text of at most 200 characters, got {shown}"))
        cases.append(Case(f"provider {json.dumps(value)}", line(event(provider=value)),
                          f"provider must be text, got {shown}"))
        cases.append(Case(f"subject_kind {json.dumps(value)}", line(event(subject_kind=value)),
                          f"subject_kind must be person or organization, got {shown}"))
        if not isinstance(value, dict):  # {} is no attributes, and a nested one fails on its names
            cases.append(Case(f"attributes {json.dumps(value)}", line(event(attributes=value)),
                              f"attributes must be an object, got {shown}"))
    cases.append(Case("key of 1e300", line(event(key=1e300)), "key must be text of at most 200 characters, got 1e+300"))
    cases.append(Case("key of 200 digits", line(event(key=10**199)),
                      "key must be text of at most 200 characters, got a number of about 200 digits"))
    for word in ("robot", "Person", "PERSON", " person", "persons", "org", "\ud800", "per\x00son"):
        cases.append(Case(f"subject_kind {word!r}", line(event(subject_kind=word)),
                          f"subject_kind must be person or organization, got {word!r}"))
    for field in ("key", "provider"):
        for char, words, code in UNPRINTABLE:
            value = f"ab{char}c"
            cases.append(Case(f"{field} holding {code}", line(event(**{field: value})),
                              f"{field} {value!r} has {words} at position 3 ({code})"))
        cases.append(Case(f"{field} of 201 characters", line(event(**{field: "k" * 201})),
                          f"{field} must be text of at most 200 characters, got 201 characters"))
        cases.append(Case(f"{field} of 1 MB", line(event(**{field: "k" * 2**20})),
                          f"{field} must be text of at most 200 characters, got 1,048,576 characters"))
    for char, words, code in UNSTORABLE:
        value = f"speed{char}ing"
        cases.append(Case(f"attribute text holding {code}", line(event(attributes={"offence": value})),
                          f"attribute 'offence' of traffic.violation has {words} at position 6 ({code})"))
        cases.append(Case(f"census note holding {code}", line(census(note=value)),
                          f"attribute 'note' of civic.census has {words} at position 6 ({code})"))
    for field, message in (("subject", "username '\\ud800' contains a control, invisible or unassigned character "
                                       "at position 1 (U+D800)"),
                           ("type", "unknown event type '\\ud800' (not in the rongcheng policy)"),
                           ("occurred_at", f"occurred_at: '\\ud800' {NOT_RFC3339}")):
        cases.append(Case(f"{field} a lone surrogate", line(event(**{field: "\ud800"})), message))
    cases += [
        Case("subject a NUL", line(event(subject="al\x00ice")),
             "username 'al\\x00ice' contains a control, invisible or unassigned character at position 3 (U+0000)"),
        Case("type a NUL", line(event(type="traffic.violation\x00")),
             "unknown event type 'traffic.violation\\x00' (not in the rongcheng policy)"),
        Case("attribute name a lone surrogate", line(event(attributes={"\udc00": "x"})),
             "attribute '\\udc00' is not in the schema of traffic.violation"),
        Case("unknown field a lone surrogate", line({**event(), "\ud800": 1}),
             "unknown field '\\ud800' (fields: subject, subject_kind, type, occurred_at, provider, key, attributes)"),
    ]
    # Long values come back as an excerpt: never the whole megabyte.
    mega = "x" * 2**20
    cases += [
        Case("type of 1 MB", line(event(type=mega)), f"unknown event type '{'x' * 39}…' (not in the rongcheng policy)"),
        Case("subject of 1 MB", line(event(subject=mega)),
             f"username '{'x' * 39}…' has 1048576 characters; at most 64 are allowed"),
        Case("subject_kind of 1 MB", line(event(subject_kind=mega)),
             f"subject_kind must be person or organization, got '{'x' * 39}…'"),
        Case("occurred_at of 1 MB", line(event(occurred_at=mega)), f"occurred_at: '{'x' * 39}…' {NOT_RFC3339}"),
        Case("unknown field of 1 MB", line({**event(), mega: 1}),
             f"unknown field '{'x' * 39}…' (fields: subject, subject_kind, type, occurred_at, provider, key, attributes)"),
        Case("attribute name of 1 MB", line(event(attributes={mega: 1})),
             f"attribute '{'x' * 39}…' is not in the schema of traffic.violation"),
        Case("attribute value of 1 MB", line(event(attributes={"offence": mega})),
             "attribute 'offence' of traffic.violation is longer than 100 characters"),
        Case("a value not allowed, of 500 characters", line(event(type="utility.late_payment",
                                                                    attributes={"utility": "x" * 500})),
             f"attribute 'utility' of utility.late_payment must be one of gas, heating, power, water; "
             f"got '{'x' * 39}…'"),
        Case("census note of 1 MB", line(census(note=mega)),
             f"attribute 'note' of civic.census is longer than 500 characters"),
    ]
    # A resident ID inside a value that is echoed is masked.
    cases += [
        Case("unknown type holding an ID", line(event(type=f"loan-{VALID_ID}")),
             "unknown event type 'loan-110*************2X' (not in the rongcheng policy)"),
        Case("unknown field holding an ID", line({**event(), f"id {VALID_ID}": 1}),
             "unknown field 'id 110*************2X' (fields: subject, subject_kind, type, occurred_at, provider, key, "
             "attributes)"),
        Case("an ID with spaces in an allowed value", line(event(type="utility.late_payment",
                                                                 attributes={"utility": "110105 19491231002X"})),
             "attribute 'utility' of utility.late_payment must be one of gas, heating, power, water; "
             "got '110**************2X'"),
        Case("key holding an ID", line(event(key=f"loan-{VALID_ID}")),
             "key 'loan-110*************2X' contains what looks like a resident identity number, which would be stored "
             "in clear; use an opaque key (a case or contract number, a hash)"),
    ]
    # JSON that Python reads one way or another, or not at all.
    deep_array = "[" * 1000 + "]" * 1000
    deep_object = '{"a":' * 1000 + "1" + "}" * 1000
    nested = "nested too deeply (an event is an object whose attributes are one object of plain values)"
    cases += [
        Case("an array 1,000 deep", deep_array, f"not valid JSON: {nested}"),
        Case("an object 1,000 deep", deep_object, f"not valid JSON: {nested}"),
        Case("an attribute 100,000 deep", line(event())[:-1] + ', "attributes": {"offence": ' + "[" * 100_000
             + "]" * 100_000 + "}}", f"not valid JSON: {nested}"),
        Case("an attribute 900 deep", line(event(attributes={"offence": json.loads("[" * 900 + "]" * 900)})),
             "attribute 'offence' of traffic.violation must be text, got an array of 1 item"),
        Case("a name given twice", '{"subject": "alice", "subject": "bob", "type": "traffic.violation", '
                                   '"occurred_at": "2026-01-10T08:00:00Z", "provider": "police", "key": "k1"}',
             "the name 'subject' appears twice in one object (which one is meant?)"),
        Case("a name given twice with one value", line(event())[:-1] + ', "key": "k1"}',
             "the name 'key' appears twice in one object (which one is meant?)"),
        Case("an attribute given twice", line(event())[:-1] + ', "attributes": {"offence": "a", "offence": "b"}}',
             "the name 'offence' appears twice in one object (which one is meant?)"),
        Case("NaN", line(census())[:-2] + '"area": NaN}}', "not valid JSON: NaN is not a JSON number"),
        Case("Infinity", line(census())[:-2] + '"area": Infinity}}', "not valid JSON: Infinity is not a JSON number"),
        Case("-Infinity", line(census())[:-2] + '"area": -Infinity}}', "not valid JSON: -Infinity is not a JSON number"),
        Case("an integer of 4,301 digits", line(census())[:-2] + '"household": ' + "9" * 4301 + "}}",
             "a number of 4,301 digits (no field takes more than 200)"),
        Case("a negative integer of 5,000 digits", line(census())[:-2] + '"area": -' + "9" * 5000 + "}}",
             "a number of 5,000 digits (no field takes more than 200)"),
        Case("a key of 5,000 digits", line(event(key=...))[:-1] + ', "key": ' + "1" * 5000 + "}",
             "a number of 5,000 digits (no field takes more than 200)"),
        Case("a number of 201 digits", line(census())[:-2] + '"area": ' + "1" * 201 + "}}",
             "a number of 201 digits (no field takes more than 200)"),
        Case("not JSON", '{"subject": "alice", "type": ', "not valid JSON (Expecting value at column 30)"),
        Case("a lone surrogate outside a string", '{"subject": \\ud800}', "not valid JSON (Expecting value at column 13)"),
    ]
    for value, shown in ((0, "0"), ("alice", "'alice'"), (None, "null"), (True, "true"), ([event()], "an array")):
        cases.append(Case(f"top level {shown}", line(value),
                          "expected a JSON object with subject, type, occurred_at, provider, key"))
    # Numbers: as JSON writes them, no more; beyond 2^53 not every reader sees the number hashed.
    whole = "attribute 'household' of civic.census must be a whole number"
    number = "attribute 'area' of civic.census must be a number"
    too_large = f"{whole} between -2^53 and 2^53 (9,007,199,254,740,992)"
    for text in ("1_000", "١٢", "１２", "0x10", "1e3", "1.5", "12abc", "--1", "", " ", "1 000", "+", "٣"):
        cases.append(Case(f"household {text!r}", line(census(household=text)),
                          f"{whole} in digits 0-9, got {text!r}"))
    for text in ("1_000.5", "٣.٥", "３", "inf", "-Infinity", "nan", "1e", ".", "0x1p3", "1,5", "", "1e5_0"):
        cases.append(Case(f"area {text!r}", line(census(area=text)), f"{number} in digits 0-9, got {text!r}"))
    cases += [
        # 16 digits are masked as an ID would be: a message cannot tell them apart
        Case("household 2^53", line(census(household=2**53)), f"{too_large}, got 900***********92"),
        Case("household -2^53", line(census(household=-2**53)), f"{too_large}, got -900***********92"),
        Case("household 1e300", line(census(household=1e300)), f"{too_large}, got a number of about 301 digits"),
        Case("household '9' * 21", line(census(household="9" * 21)), f"{too_large}, got '{'9' * 3}{'*' * 16}99'"),
        Case("household '9' * 5000", line(census(household="9" * 5000)), f"{too_large}, got '999{'*' * 36}…'"),
        Case("household 1.5", line(census(household=1.5)), f"{whole}, got 1.5"),
        Case("household true", line(census(household=True)), f"{whole}, got true"),
        Case("household []", line(census(household=[])), f"{whole}, got an array of 0 items"),
        Case("area 1e400", line(census())[:-2] + '"area": 1e400}}', "attribute 'area' of civic.census must be a "
                                                                     "finite number"),
        Case("area '9' * 5000", line(census(area="9" * 5000)), "attribute 'area' of civic.census must be a finite "
                                                                "number"),
        Case("area {}", line(census(area={})), f"{number}, got an object"),
        Case("owner 'yes'", line(census(owner="yes")), "attribute 'owner' of civic.census must be true or false, "
                                                       "got 'yes'"),
        Case("owner 2", line(census(owner=2)), "attribute 'owner' of civic.census must be true or false, got 2"),
        Case("note 3", line(census(note=3)), "attribute 'note' of civic.census must be text, got 3"),
    ]
    for text, cause in BAD_TIMES:
        cases.append(Case(f"occurred_at {text}", line(event(occurred_at=text)), f"occurred_at: {text!r} {cause}"))
    return cases


CORPUS = _corpus()

CSV_HEADER = "subject,type,occurred_at,provider,key,household,note\n"


def _csv_row(**cells) -> str:
    row = {"subject": "alice", "type": "civic.census", "occurred_at": "2026-01-10T08:00:00Z", "provider": "census",
           "key": "c1", "household": "", "note": ""} | cells
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(row.values())
    return out.getvalue()


CSV_CORPUS = [
    Case("a key cell over 128 KiB", CSV_HEADER + _csv_row(key="k" * 131_073),
         "a cell is longer than 131,072 characters, the most a CSV cell may hold"),
    Case("a note cell over 128 KiB", CSV_HEADER + _csv_row(note="n" * 200_000),
         "a cell is longer than 131,072 characters, the most a CSV cell may hold"),
    Case("a NUL in a key cell", CSV_HEADER + _csv_row(key="c\x001"), "key 'c\\x001' has a control character at "
                                                                     "position 2 (U+0000)"),
    Case("a NUL in a provider cell", CSV_HEADER + _csv_row(provider="cen\x00sus"),
         "provider 'cen\\x00sus' has a control character at position 4 (U+0000)"),
    Case("a bidirectional override in a provider cell", CSV_HEADER + _csv_row(provider="census\u202e"),
         "provider 'census\\u202e' has an invisible formatting character (bidirectional or zero-width) at position 7 "
         "(U+202E)"),
    Case("a line break in a quoted key cell", CSV_HEADER + _csv_row(key="c\n1"),
         "key 'c\\n1' has a control character at position 2 (U+000A)"),
    Case("a NUL in a note cell", CSV_HEADER + _csv_row(note="a\x00b"),
         "attribute 'note' of civic.census has a control character at position 2 (U+0000)"),
    Case("an escape in a note cell", CSV_HEADER + _csv_row(note="\x1b[31mred"),
         "attribute 'note' of civic.census has a control character at position 1 (U+001B)"),
    Case("1_000 in an integer cell", CSV_HEADER + _csv_row(household="1_000"),
         "attribute 'household' of civic.census must be a whole number in digits 0-9, got '1_000'"),
    Case("Arabic-Indic digits in an integer cell", CSV_HEADER + _csv_row(household="١٢"),
         "attribute 'household' of civic.census must be a whole number in digits 0-9, got '١٢'"),
    Case("5,000 digits in an integer cell", CSV_HEADER + _csv_row(household="9" * 5000),
         "attribute 'household' of civic.census must be a whole number between -2^53 and 2^53 "
         f"(9,007,199,254,740,992), got '999{'*' * 36}…'"),
    Case("a subject_kind that is no kind", CSV_HEADER.replace("subject,", "subject,subject_kind,")
         + _csv_row().replace("alice,", "alice,people,"),
         "subject_kind must be person or organization, got 'people'"),
    Case("an ISO week date", CSV_HEADER + _csv_row(occurred_at="2026-W02-1T08:00:00Z"),
         "occurred_at: '2026-W02-1T08:00:00Z' is an ISO week date (give a calendar date, YYYY-MM-DD)"),
    Case("a time past year 9999 in UTC", CSV_HEADER + _csv_row(occurred_at="9999-12-31T23:59:59-01:00"),
         f"occurred_at: '9999-12-31T23:59:59-01:00' {RANGE}"),
]

AT_COMMANDS = {"standing": ("standing", "alice"), "check": ("check", "alice", "utility.heating"),
               "rate": ("rate", "alice", "bob", "3")}
# The three commands read --at the same way: every bad time on one, the tester's on each.
TESTERS_TIMES = ("9999-12-31", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-W02-1",
                 "2026-01-10T08:00:00+01:00:30")
AT_CASES = [(command, text, f"error: {text!r} {cause}") for command in AT_COMMANDS
            for text, cause in BAD_TIMES + BAD_DATES if command == "standing" or text in TESTERS_TIMES]


# -- a registry for the whole module, on each backend -------------------------------------------


class CliRegistry:
    """A registry driven through the CLI, whose ledger size is read from its database directly."""

    def __init__(self, url: str, folder: Path):
        self.url = url
        self.folder = folder
        self.key_file = folder / "registry.key"
        self.engine = create_engine(url)
        self.files = 0

    def run(self, *args: str):
        return CliRunner().invoke(app, ["--db", self.url, "--key-file", str(self.key_file), *args], env=ENV)

    def size(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM entries")).scalar_one()

    def write(self, content: str, suffix: str = ".jsonl") -> Path:
        self.files += 1
        path = self.folder / f"events-{self.files}{suffix}"
        # surrogatepass: a lone surrogate in CSV text becomes bytes that are not UTF-8, as a broken exporter writes
        path.write_bytes(content.encode("utf-8", "surrogatepass"))
        return path


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def cli_registry(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"malformed-{request.param}")
    policy = folder / "census.toml"
    policy.write_text(pack_file("rongcheng").read_text(encoding="utf-8") + CENSUS, encoding="utf-8")
    with fresh_database(request.param, folder) as url:
        cli = CliRegistry(url, folder)
        created = cli.run("init", "--policy", str(policy))
        assert created.exit_code == 0, created.output
        try:
            yield cli
        finally:
            cli.engine.dispose()


def refusal(result) -> str:
    """The one line a refused input prints, after every other promise of a user mistake is checked."""
    message = error_line(result)  # not 0, nothing uncaught, no traceback, one line
    assert result.exit_code == 2, result.output
    assert len(message) <= LONGEST_LINE, message[:LONGEST_LINE]
    assert "1101051949123100" not in result.output  # a resident ID never comes back whole
    return message


def refused_ingest(cli_registry: CliRegistry, content: str, suffix: str = ".jsonl") -> tuple[Path, str]:
    path = cli_registry.write(content, suffix)
    before = cli_registry.size()
    message = refusal(cli_registry.run("ingest", str(path)))
    assert cli_registry.size() == before  # nothing written
    return path, message


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_a_malformed_event_is_refused_in_one_line_naming_the_line_and_the_cause(cli_registry, case):
    path, message = refused_ingest(cli_registry, case.line + "\n")
    assert message == f"{path} line 1: {case.error}"


@pytest.mark.parametrize("case", CSV_CORPUS, ids=[case.name for case in CSV_CORPUS])
def test_a_malformed_csv_row_is_refused_in_one_line_naming_the_line_and_the_cause(cli_registry, case):
    path, message = refused_ingest(cli_registry, case.line, ".csv")
    assert message == f"{path} line 2: {case.error}"


@pytest.mark.parametrize("command, at, error", AT_CASES, ids=[f"{c} {t}" for c, t, _ in AT_CASES])
def test_a_malformed_at_is_refused_in_one_line(cli_registry, command, at, error):
    before = cli_registry.size()
    assert refusal(cli_registry.run(*AT_COMMANDS[command], "--at", at)) == error
    assert cli_registry.size() == before


def test_the_corpus_holds_every_family_the_tester_sent():
    # A case dropped by mistake (a loop that stops building) would leave a family untested.
    assert len(CORPUS) + len(CSV_CORPUS) + len(AT_CASES) >= 290
    names = " ".join(case.name for case in CORPUS)
    for family in ("subject 0", "type false", "occurred_at []", "key {}",
                   "lone surrogate", "1,000 deep", "4,301 digits", "9999-12-31T23:59:59-01:00",
                   "0001-01-01T00:00:00+01:00", "key holding U+0000", "provider holding U+0000",
                   "twice", "W02", "+01:00:30", "1234567", "'1_000'", "'١٢'", "subject_kind 'robot'",
                   "U+202E", "type of 1 MB"):
        assert family in names, family


# The caller's name and purpose go into the audit log as given; a service into the decision's row.
OPTION_CASES = [
    (("--as", "x" * 201, "standing", "alice"), "error: --as must be text of at most 200 characters, got 201 characters"),
    (("--as", "cli:\x00root", "standing", "alice"), "error: --as 'cli:\\x00root' has a control character at "
                                                      "position 5 (U+0000)"),
    (("--as", "cli:\udcff", "standing", "alice"),  # a byte that is not UTF-8, as Python decodes argv
     "error: --as 'cli:\\udcff' has a lone surrogate (half of a UTF-16 pair, which UTF-8 cannot encode) at "
     "position 5 (U+DCFF)"),
    (("--as", f"clerk {VALID_ID}", "standing", "alice"),
     "error: --as 'clerk 110*************2X' contains what looks like a resident identity number, which would be "
     "stored in clear; name the principal without it"),
    (("--purpose", "dispute\x00", "check", "alice", "utility.heating"),
     "error: --purpose has a control character at position 8 (U+0000)"),
    (("--purpose", "\ud800", "standing", "alice"),
     "error: --purpose has a lone surrogate (half of a UTF-16 pair, which UTF-8 cannot encode) at position 1 (U+D800)"),
    (("check", "alice", "a" * 121), f"error: '{'a' * 39}…' is not a service name (dotted lower-case words, "
                                    "e.g. transport.air)"),
    (("check", "alice", "utility.heating\n"), "error: 'utility.heating\\n' is not a service name (dotted "
                                               "lower-case words, e.g. transport.air)"),
]


@pytest.mark.parametrize("args, error", OPTION_CASES, ids=[" ".join(args)[:40] for args, _ in OPTION_CASES])
def test_an_option_that_would_be_stored_is_refused_in_one_line(cli_registry, args, error):
    before = cli_registry.size()
    assert refusal(cli_registry.run(*args)) == error
    assert cli_registry.size() == before


def test_a_time_given_to_the_library_as_a_number_is_held_to_the_range(registry):
    # An HTTP API will pass numbers; 10^20 was formatted as a date, and datetime overflowed.
    with pytest.raises(TimeOutOfRange, match=r"^100\*{16}00 microseconds since 1970 is outside the accepted "
                                             "range: times must fall in the years 1900 to 2200"):
        registry.standing("alice", at=10**20)
    assert registry.standing("alice", at=parse_instant("2026-01-10T00:00:00Z")).at == "2026-01-10T00:00:00Z"


# -- --skip-invalid: each bad line listed, the good ones written -----------------------------------


def test_skip_invalid_lists_every_bad_line_and_writes_the_good_ones(cli_registry):
    good = [line(event(key=f"skip-good-{n}", subject=f"skipper{n}")) for n in range(len(CORPUS))]
    lines = [text for pair in zip(good, (case.line for case in CORPUS)) for text in pair]
    path = cli_registry.write("\n".join(lines) + "\n")
    before = cli_registry.size()
    result = cli_registry.run("ingest", str(path), "--skip-invalid", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(problem["line"], problem["error"]) for problem in report["errors"]] == \
        [(2 * n + 2, case.error) for n, case in enumerate(CORPUS)]
    assert (report["accepted"], report["rejected"]) == (len(good), len(CORPUS))
    assert cli_registry.size() == before + len(good)


def test_skip_invalid_in_words_names_each_bad_line_on_its_own_line(cli_registry):
    cases = [case for case in CORPUS if "1 MB" in case.name or "lone surrogate" in case.name]
    good = line(event(key="skip-words-good", subject="wordsmith"))
    path = cli_registry.write("\n".join([good] + [case.line for case in cases]) + "\n")
    before = cli_registry.size()
    result = cli_registry.run("ingest", str(path), "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert ANSI.sub("", result.stderr).splitlines() == [f"{path} line {n}: {case.error}"
                                                        for n, case in enumerate(cases, start=2)]
    assert result.stdout.strip() == f"Accepted 1 new, 0 duplicate, {len(cases)} rejected; ledger size {before + 1}."
    assert cli_registry.size() == before + 1


# -- Hypothesis over the event schema ---------------------------------------------------------------

FIELD_NAMES = ("subject", "subject_kind", "type", "occurred_at", "provider", "key", "attributes")
ATTRIBUTE_NAMES = ("household", "area", "owner", "note", "offence", "hours")
# Any text, lone surrogates too (st.characters leaves them out unless told).
any_text = st.text(st.characters(exclude_categories=()), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**60), 10**60) | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
# Values each field takes in a good event (subjects and keys are few, so that duplicates and
# reused keys come up too); a mutation then puts any JSON value or any text in one or two fields.
plausible = {
    "subject": st.sampled_from(["alice", "bob", "张伟", VALID_ID, "91350100M000100Y43"]),
    "subject_kind": st.sampled_from(["person", "organization", "", None]),
    "type": st.sampled_from(["traffic.violation", "civic.census", "civic.volunteering"]),
    "occurred_at": st.sampled_from(["2026-01-10T08:00:00Z", "2026-01-10t08:00:00.5+08:00", "1900-01-01T00:00:00Z"])
    | st.datetimes(datetime(1890, 1, 1), datetime(2025, 12, 31)).map(lambda moment: moment.isoformat() + "Z"),
    "provider": st.sampled_from(["police", "census", "socialcredit"]),
    "key": st.integers(0, 50).map(str) | st.integers(0, 50),
    "attributes": st.dictionaries(
        st.sampled_from(ATTRIBUTE_NAMES),
        st.sampled_from(["speeding", "3", "2.5", "true", "", "1_000", "١٢"]) | st.integers(-10, 10**20)
        | st.floats() | any_text, max_size=3),
}
anything = json_values | any_text


@st.composite
def events(draw) -> dict:
    """A plausible event with one or two fields replaced by any value, maybe one dropped, now
    and then a field of any name: most examples get past the first checks, some all the way."""
    item = draw(st.fixed_dictionaries({name: plausible[name] for name in FIELD_NAMES}))
    item.update(draw(st.dictionaries(st.sampled_from(FIELD_NAMES), anything, max_size=2)))
    for name in draw(st.sets(st.sampled_from(FIELD_NAMES), max_size=1)):
        del item[name]
    if draw(st.sampled_from(range(8))) == 7:  # not 0: Hypothesis leans to the first
        item.update(draw(st.dictionaries(any_text, anything, min_size=1, max_size=1)))
    return item


# Each example is one CLI run (about 25 ms, most of it Typer building its commands): bounded.
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def accepted_or_refused(cli_registry: CliRegistry, path: Path, *refusals: str) -> None:
    """Exit 0 with at most the one event written (none for a duplicate), or exit 2 with one line
    that starts as one of `refusals` says, and nothing written."""
    before = cli_registry.size()
    result = cli_registry.run("ingest", str(path))
    assert isinstance(result.exception, SystemExit) or result.exception is None, repr(result.exception)
    if result.exit_code == 0:
        assert cli_registry.size() in (before, before + 1)
        assert result.stderr == ""
        outcome("accepted")  # --hypothesis-show-statistics: how often the fuzz gets all the way in
        return
    message = refusal(result)
    assert message.startswith(refusals), message
    outcome(f"refused: {message.split(': ', 1)[1][:25]}")
    assert cli_registry.size() == before


@FUZZ
@given(item=events())
def test_any_json_event_is_accepted_or_refused_in_one_line(cli_registry, item):
    path = cli_registry.write(json.dumps(item) + "\n")
    accepted_or_refused(cli_registry, path, f"{path} line 1: ")


csv_cells = st.text(st.characters(exclude_categories=("Cs",)), max_size=20) | st.sampled_from(
    ["", "alice", "civic.census", "2026-01-10T08:00:00Z", "census", "1_000", "١٢", "3", "true", '"', "\x00", ","])


@settings(FUZZ, max_examples=100)
@given(columns=st.lists(st.sampled_from(ATTRIBUTE_NAMES + ("subject_kind", "colour")), unique=True, max_size=3),
       cells=st.lists(csv_cells, min_size=5, max_size=9), quoted=st.booleans(), broken_utf8=st.booleans())
def test_any_csv_row_is_accepted_or_refused_in_one_line(cli_registry, columns, cells, quoted, broken_utf8):
    header = ["subject", "type", "occurred_at", "provider", "key", *columns]
    out = io.StringIO()
    writer = csv.writer(out)  # lines end in \r\n, so a cell holding \r alone is quoted too
    writer.writerow(header)
    if quoted:
        writer.writerow(cells)
    else:  # as a careless exporter writes a line: quotes and commas left as they are
        out.write(",".join(cell.replace("\n", " ").replace("\r", " ") for cell in cells) + "\r\n")
    content = out.getvalue() + ("\ud800\n" if broken_utf8 else "")
    path = cli_registry.write(content, ".csv")
    accepted_or_refused(cli_registry, path, f"{path} line ", f"error: {path}: not UTF-8 text")
