"""The ingest boundary without a database: the Validator's rules and the file readers."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socialcredit.errors import InvalidInput
from socialcredit.instants import TimeFormatError, TimeOutOfRange, format_instant, parse_instant
from socialcredit.intake.identity import Pseudonymizer
from socialcredit.intake.readers import InputError, read_csv, read_jsonl, utf8_lines
from socialcredit.intake.validation import Validator, configured_clock_skew_us, refuse_future
from socialcredit.policy.load import load_policy

KEY = bytes(range(32))
MINUTE = 60_000_000
NOW = parse_instant("2026-06-01T12:00:00Z")


def validator(policy: str = "rongcheng", **options) -> Validator:
    options.setdefault("clock", lambda: NOW)
    return Validator(load_policy(policy), Pseudonymizer(KEY), **options)


def ticket(occurred_at: str, **fields) -> dict:
    return {"subject": "alice", "type": "traffic.violation", "occurred_at": occurred_at, "provider": "police",
            "key": "t1", **fields}


# -- events in the future ----------------------------------------------------------------------


def test_refuse_future_allows_the_skew_and_not_a_microsecond_more():
    refuse_future(NOW + 5 * MINUTE, NOW, 5 * MINUTE)
    with pytest.raises(TimeOutOfRange) as refused:
        refuse_future(NOW + 5 * MINUTE + 1, NOW, 5 * MINUTE)
    assert str(refused.value) == ("2026-06-01T12:05:00.000001Z is in the future: the registry's clock reads "
                                  "2026-06-01T12:00:00Z and accepts times at most 5 minutes ahead "
                                  "(SOCIALCREDIT_MAX_CLOCK_SKEW)")


@pytest.mark.parametrize("skew_us, words", [(0, "0 seconds"), (1_000_000, "1 second"), (90_000_000, "90 seconds"),
                                            (2 * 3_600_000_000, "2 hours"), (86_400_000_000, "1 day")])
def test_the_refusal_says_the_skew_in_words(skew_us, words):
    with pytest.raises(TimeOutOfRange, match=f"at most {words} ahead"):
        refuse_future(NOW + skew_us + 1, NOW, skew_us)


@given(st.integers(-10**15, 10**15), st.integers(0, 10**12))
def test_an_instant_is_refused_exactly_when_it_is_later_than_the_clock_plus_the_skew(offset, skew):
    try:
        refuse_future(NOW + offset, NOW, skew)
    except TimeOutOfRange:
        assert offset > skew
    else:
        assert offset <= skew


def test_the_validator_refuses_an_event_later_than_its_clock_naming_the_line():
    with pytest.raises(InputError) as refused:
        validator().validate(ticket("2026-06-01T12:06:00Z"), line=7)
    assert refused.value.line == 7
    assert str(refused.value).startswith("occurred_at: 2026-06-01T12:06:00Z is in the future: the registry's clock "
                                         "reads 2026-06-01T12:00:00Z")
    assert validator().validate(ticket("2026-06-01T12:05:00Z")).occurred_us == NOW + 5 * MINUTE


def test_the_validator_reads_its_clock_again_before_refusing():
    # A long file: the clock has moved on since the Validator was made.
    readings = iter([NOW, NOW + 10 * MINUTE])
    checking = validator(clock=lambda: next(readings))
    assert checking.validate(ticket("2026-06-01T12:12:00Z")).occurred_us == NOW + 12 * MINUTE


def test_a_validator_parameter_sets_the_skew():
    assert validator(max_clock_skew_us=60 * MINUTE).validate(ticket("2026-06-01T12:59:00Z")).occurred_us == \
        NOW + 59 * MINUTE
    with pytest.raises(InputError, match="at most 0 seconds ahead"):
        validator(max_clock_skew_us=0).validate(ticket("2026-06-01T12:00:00.000001Z"))


@pytest.mark.parametrize("value, skew_us", [(None, 5 * MINUTE), ("", 5 * MINUTE), ("PT30S", 30_000_000),
                                            ("PT1H", 60 * MINUTE), ("P1D", 1440 * MINUTE), ("PT0S", 0)])
def test_the_skew_comes_from_the_environment(value, skew_us):
    env = {} if value is None else {"SOCIALCREDIT_MAX_CLOCK_SKEW": value}
    assert configured_clock_skew_us(env) == skew_us


@pytest.mark.parametrize("value, words", [("5 minutes", "is not an ISO 8601 duration (expected e.g. PT5M"),
                                          ("P1M", "give the skew in days, hours, minutes or seconds"),
                                          ("-PT5M", "is not an ISO 8601 duration")])
def test_a_skew_that_is_not_an_exact_duration_is_refused_naming_the_variable(value, words):
    with pytest.raises(TimeFormatError) as refused:
        configured_clock_skew_us({"SOCIALCREDIT_MAX_CLOCK_SKEW": value})
    assert str(refused.value).startswith(f"SOCIALCREDIT_MAX_CLOCK_SKEW={value!r}")
    assert words in str(refused.value)


def test_the_validator_reads_the_skew_from_the_environment(monkeypatch):
    monkeypatch.setenv("SOCIALCREDIT_MAX_CLOCK_SKEW", "PT2H")
    assert validator().max_clock_skew_us == 120 * MINUTE
    monkeypatch.setenv("SOCIALCREDIT_MAX_CLOCK_SKEW", "soon")
    with pytest.raises(TimeFormatError, match="SOCIALCREDIT_MAX_CLOCK_SKEW='soon'"):
        validator()


def test_a_time_before_1900_is_refused_before_the_future_is_considered():
    with pytest.raises(InputError, match="occurred_at: '1899-12-31T00:00:00Z' is outside the accepted range"):
        validator().validate(ticket("1899-12-31T00:00:00Z"))
    assert format_instant(validator().validate(ticket("1900-01-01T00:00:00Z")).occurred_us) == "1900-01-01T00:00:00Z"


# -- the readers ---------------------------------------------------------------------------------

HEADER = "subject,type,occurred_at,provider,key"


def csv_lines(text: str) -> list:
    return list(read_csv(io.StringIO(text, newline="")))


def test_csv_rows_are_numbered_by_the_line_they_start_on():
    rows = csv_lines(f'{HEADER},note\n\n'
                     'alice,t.a,2026-01-01T00:00:00Z,p,k1,"two\nlines"\n'
                     'bob,t.b,2026-01-02T00:00:00Z,p,k2,\n')
    assert [(line, event["subject"], event["attributes"]) for line, event in rows] == [
        (3, "alice", {"note": "two\nlines"}), (5, "bob", {})]


@pytest.mark.parametrize("text, line, message", [
    (f"subject,key,{HEADER}\n", 1, "the header has two columns named 'subject'"),
    (" subject ,type,\ufeffoccurred_at,key,key\n", 1, "the header has two columns named 'key'"),
    ("subject,type\n", 1, "the header lacks column(s) occurred_at, key"),
    (f'"{HEADER}\n', 1, 'a quoted cell that starts on this line is never closed (its closing " is missing)'),
    (f'{HEADER}\na,b,c,d,"e"f\n', 2, "not valid CSV (',' expected after '\"')"),
])
def test_a_csv_mistake_is_one_error_naming_its_line(text, line, message):
    [(number, error)] = csv_lines(text)
    assert isinstance(error, InputError)
    assert (number, error.line, str(error)) == (line, line, message)


def test_after_an_unclosed_quote_nothing_more_is_read():
    rows = csv_lines(f'{HEADER}\na,t,2026-01-01T00:00:00Z,p,"k1\nb,t,2026-01-01T00:00:00Z,p,k2\n')
    assert [(line, type(item).__name__) for line, item in rows] == [(2, "InputError")]


def test_more_cells_than_columns_is_an_error_and_reading_goes_on():
    rows = csv_lines(f"{HEADER}\na,t,2026-01-01T00:00:00Z,p,k1,extra\nb,t,2026-01-01T00:00:00Z,p,k2\n")
    assert str(rows[0][1]) == "more cells than header columns"
    assert rows[1] == (3, {"subject": "b", "type": "t", "occurred_at": "2026-01-01T00:00:00Z", "provider": "p",
                           "key": "k2", "attributes": {}})


@pytest.mark.parametrize("text", ["", "\n", "\n  \n", "\r\n"])
def test_a_file_of_blank_lines_yields_nothing(text):
    assert list(read_jsonl(io.StringIO(text))) == []
    assert csv_lines(text) == []


# -- identifiers stay out of what is stored in clear ------------------------------------------

RESIDENT_ID = "11010519491231002X"
ORGANIZATION_CODE = "91350100M000100Y43"


@pytest.mark.parametrize("field, value, masked, what", [
    ("key", f"loan-{RESIDENT_ID}-7", "loan-110*************2X-7", "resident identity number"),
    ("key", f"{ORGANIZATION_CODE}:2026-02", "913*************43:2026-02", "unified social credit code"),
    ("provider", f"bank-{ORGANIZATION_CODE}", "bank-913*************43", "unified social credit code"),
])
def test_a_key_or_provider_holding_an_identifier_is_refused_masked(field, value, masked, what):
    with pytest.raises(InputError) as refused:
        validator().validate(ticket("2026-01-10T08:00:00Z", **{field: value}), line=4)
    message = str(refused.value)
    assert message.startswith(f"{field} {masked!r} contains what looks like a {what}, which would be stored in "
                              "clear; ")
    assert RESIDENT_ID not in message and ORGANIZATION_CODE not in message
    assert refused.value.line == 4


def test_a_default_provider_holding_an_identifier_is_refused_before_any_event():
    with pytest.raises(InputError, match="^provider 'clinic-110\\*+2X' contains what looks like a resident") as refused:
        validator(default_provider=f"clinic-{RESIDENT_ID}")
    assert refused.value.line is None  # no line is at fault


def test_an_events_own_provider_is_looked_at_before_it_is_compared_with_the_default():
    with pytest.raises(InputError, match="^provider 'bank-913\\*+43' contains"):
        validator(default_provider="bank").validate(ticket("2026-01-10T08:00:00Z",
                                                           provider=f"bank-{ORGANIZATION_CODE}"))


def test_a_reference_attribute_is_stored_as_the_pseudonym_of_its_subject():
    pseudonyms = Pseudonymizer(KEY)
    rating = {"subject": "lacie", "type": "peer.rating", "occurred_at": "2026-05-02T09:00:00Z", "provider": "app",
              "key": "r1", "attributes": {"rater": RESIDENT_ID, "stars": 4, "interaction": "coffee"}}
    valid = validator("nosedive").validate(rating)
    assert valid.attributes["rater"] == pseudonyms.pseudonym(RESIDENT_ID, "person")
    assert RESIDENT_ID not in valid.attributes_json and RESIDENT_ID[:17] not in valid.attributes_json
    assert valid.subject == pseudonyms.pseudonym("lacie", "person")


# -- JSON read strictly ------------------------------------------------------------------------


@pytest.mark.parametrize("line, error", [
    ('{"key": "a", "key": "b"}', "the name 'key' appears twice in one object (which one is meant?)"),
    ('{"attributes": {"x": 1, "x": 1}}', "the name 'x' appears twice in one object (which one is meant?)"),
    ('{"area": NaN}', "not valid JSON: NaN is not a JSON number"),
    ('{"area": -Infinity}', "not valid JSON: -Infinity is not a JSON number"),
    ('{"key": ' + "7" * 4301 + "}", "a number of 4,301 digits (no field takes more than 200)"),  # was ValueError
    ("[" * 1000 + "]" * 1000, "not valid JSON: nested too deeply (an event is an object whose attributes are one "
                              "object of plain values)"),  # was RecursionError
])
def test_jsonl_refuses_what_python_would_read_one_way_or_another(line, error):
    [(number, refused)] = list(read_jsonl([line + "\n"]))
    assert (number, str(refused)) == (1, error)


def test_jsonl_reads_a_number_of_200_digits_for_a_key_to_refuse_or_take():
    [(_, value)] = list(read_jsonl(['{"key": ' + "7" * 200 + "}"]))
    assert value == {"key": int("7" * 200)}


def test_a_csv_cell_over_the_limit_refuses_its_row_and_reading_goes_on():
    text = "subject,type,occurred_at,provider,key\n" + "alice,t,2026-01-10T08:00:00Z,p," + "k" * 131_073 + "\n" + \
        "bob,t,2026-01-10T08:00:00Z,p,k2\n"
    (first, refused), (second, row) = list(read_csv(io.StringIO(text)))
    assert (first, str(refused)) == (2, "a cell is longer than 131,072 characters, the most a CSV cell may hold")
    assert (second, row["subject"], row["key"]) == (3, "bob", "k2")


def test_utf8_lines_leave_the_byte_order_mark_out_and_name_the_line_that_is_not_utf_8():
    assert list(utf8_lines([b"\xef\xbb\xbf{}\n", b"\xc3\xa9\n"], "f")) == ["{}\n", "é\n"]
    lines = utf8_lines([b"{}\n", b"\n", b'{"a": "caf\xe9"}\n'], "events.jsonl")
    assert next(lines) == "{}\n" and next(lines) == "\n"
    with pytest.raises(InvalidInput) as refused:
        next(lines)
    assert str(refused.value) == "events.jsonl line 3: not UTF-8 text (invalid continuation byte at byte 11 of the line)"
