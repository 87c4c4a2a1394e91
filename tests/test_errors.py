"""One error tree: each kind of mistake raises its kind, and front doors map kinds, not messages."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from socialcredit import (Conflict, ErrorKind, Forbidden, InvalidInput, NotFound, Registry, SocialCreditError,
                          Tampered, Unavailable)
from socialcredit.errors import Unauthenticated
from socialcredit.cli import app
from socialcredit.cli.app import EXIT_BY_KIND
from socialcredit.errors import excerpt
from socialcredit.intake.identity import IdentityError
from socialcredit.instants import TimeFormatError
from socialcredit.policy.load import PolicyError

from conftest import allow_tampering, behind_its_back, event

ENV = {"SOCIALCREDIT_DB": None, "SOCIALCREDIT_KEY": None, "SOCIALCREDIT_KEY_FILE": None, "COLUMNS": "200"}


def test_every_kind_is_a_class_of_the_one_tree():
    kinds = {cls.kind for cls in (InvalidInput, NotFound, Conflict, Forbidden, Unauthenticated, Unavailable, Tampered)}
    assert kinds == set(ErrorKind)
    for cls in (InvalidInput, NotFound, Conflict, Forbidden, Unavailable, Tampered, IdentityError, TimeFormatError,
                PolicyError):
        assert issubclass(cls, SocialCreditError)
    # The domain errors are invalid input, and still ValueErrors (pydantic validators rely on it).
    assert IdentityError("x").kind is TimeFormatError("x").kind is PolicyError("x").kind is ErrorKind.INVALID_INPUT
    assert issubclass(InvalidInput, ValueError)


def test_a_message_is_one_line_whatever_it_quotes():
    assert str(InvalidInput("bad value 'a\nb'")) == "bad value 'a\\nb'"


EXCERPTS = [
    ("oil", "'oil'"),
    ("x" * 40, f"'{'x' * 40}'"),
    ("x" * 2**20, f"'{'x' * 39}…'"),  # an unknown event type of 1 MB came back whole
    ("a\x00b\n", "'a\\x00b\\n'"),
    ("\ud800", "'\\ud800'"),  # a lone surrogate cannot be printed: UnicodeEncodeError
    ("abc\u202edef", "'abc\\u202edef'"),  # a bidirectional override would reorder the line
    ("it's", "'it\\'s'"),
    ("\ud800" * 10, "'" + "\\ud800" * 6 + "…'"),  # the escapes count: an excerpt stays short
    ("loan-11010519491231002X-2026", "'loan-110*************2X-2026'"),
    ("110105 19491231002X", "'110**************2X'"),  # spaces do not hide an ID
    ("１１０１０５１９４９１２３１００２X", "'１１０*************２X'"),  # nor full-width digits
    ("call 12345678901234", "'call 12345678901234'"),  # 14 digits: no ID is that short
    (10**5000, "a number of about 5001 digits"),  # str() of it raises ValueError
    (-(2**53), "-900***********92"),
    (1.5, "1.5"),
    (True, "true"),
    (None, "null"),
    ([[[]]], "an array of 1 item"),
    ({"a": 1}, "an object"),
]


# ids by position: pytest would str() the 5,001-digit number for its id, and fail as Python does
@pytest.mark.parametrize("value, shown", EXCERPTS, ids=[f"excerpt {n}" for n in range(len(EXCERPTS))])
def test_an_excerpt_is_short_escaped_and_masked(value, shown):
    assert excerpt(value) == shown


def test_an_excerpt_of_an_array_nested_deeper_than_repr_goes_names_it():
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    assert excerpt(nested) == "an array of 1 item"


def test_the_cli_maps_kinds_to_exit_statuses():
    assert EXIT_BY_KIND == {ErrorKind.INVALID_INPUT: 2, ErrorKind.NOT_FOUND: 2, ErrorKind.CONFLICT: 2,
                            ErrorKind.FORBIDDEN: 2, ErrorKind.UNAUTHENTICATED: 2, ErrorKind.UNAVAILABLE: 2,
                            ErrorKind.TAMPERED: 1}


def test_the_library_raises_each_kind_where_it_applies(make_registry, database_url, tmp_path):
    registry = make_registry("rongcheng")
    registry.ingest([event("alice", "traffic.violation", "2026-01-05T00:00:00Z", 1)])
    with pytest.raises(NotFound, match="no decision 'd-nope'"):
        registry.replay("d-nope")
    with pytest.raises(NotFound, match="entry #99 is not an event"):
        registry.void(99, "typo")
    with pytest.raises(InvalidInput, match="is not a service name"):
        registry.check("alice", "NOT a service!!")
    with pytest.raises(Conflict, match="already holds a registry"):
        Registry.init(database_url, "rongcheng", key_file=tmp_path / "other.key")
    registry.void(1, "wrong person")
    with pytest.raises(Conflict, match="already cancelled"):
        registry.void(1, "again")
    with behind_its_back(registry) as conn:
        allow_tampering(conn, registry.store.db.backend)
        from sqlalchemy import text

        conn.execute(text("DELETE FROM entries WHERE seq = 1"))
    with pytest.raises(Tampered, match="the ledger is missing stored hashes"):
        registry.inclusion_proof(0)


def test_a_service_name_is_checked_before_anything_is_logged(registry):
    before = registry.audit(limit=1000).entries
    for bad in ("NOT a service!!", "transport..air", "Transport.Air", ""):
        with pytest.raises(InvalidInput):
            registry.check("alice", bad)
    after = registry.audit(limit=1000).entries
    assert [e.action for e in after if e.action == "decision"] == []
    assert len(after) == len(before) + 1  # only the first audit query itself


def test_cli_exit_statuses_follow_the_kind(tmp_path):
    runner = CliRunner()
    db = ["--db", f"sqlite:///{tmp_path}/r.db"]

    def run(*args):
        return runner.invoke(app, [*db, *args], env=ENV)

    assert run("init").exit_code == 0
    assert run("init").exit_code == 2  # conflict: it exists
    assert run("replay", "d-nope").exit_code == 2  # not found
    assert run("check", "alice", "NOT!!").exit_code == 2  # invalid input
    denied = run("check", "alice", "NOT!!")
    assert denied.stderr.startswith("error: 'NOT!!' is not a service name") and "Traceback" not in denied.output
