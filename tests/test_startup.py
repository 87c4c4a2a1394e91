"""A single command starts fast: it imports only what it uses, and opening a registry reads
nothing in proportion to the ledger's size.

Speed itself is measured in bench/bench_command.py; these tests hold the causes in place.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from socialcredit.registry import Registry
from socialcredit.store import database as database_module
from socialcredit.store.schema import SCHEMA_HEAD, migrations_head

from conftest import event

HEAVY = ("numpy", "scipy", "sqlalchemy", "alembic", "psycopg", "pandas", "pyarrow", "networkx")

IMPORTS_OF_A_CHECK = """
import json, sys
from socialcredit.cli import app
try:
    app(["--db", sys.argv[1], "check", "alice", "transport.air", "--json"], standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def test_schema_head_constant_is_the_migrations_head():
    assert SCHEMA_HEAD == migrations_head()


def test_a_check_imports_no_numerical_or_orm_library(tmp_path):
    url = f"sqlite:///{tmp_path}/r.db"
    Registry.init(url, "rongcheng").close()
    done = subprocess.run([sys.executable, "-c", IMPORTS_OF_A_CHECK, url], capture_output=True, text=True,
                          timeout=120, check=True)
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert "socialcredit.registry" in modules  # it did run the check
    loaded = sorted({m.split(".")[0] for m in modules} & set(HEAVY))
    assert loaded == [], f"a single check imported {loaded}"


def _work_to_open_and_check(url: str, monkeypatch) -> int:
    """SQLite virtual-machine steps (in hundreds) to open a registry and answer two checks."""
    steps = [0]
    connect = sqlite3.connect

    def counted(*args, **kwargs):
        connection = connect(*args, **kwargs)
        connection.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 100)
        return connection

    monkeypatch.setattr(database_module.sqlite3, "connect", counted)
    try:
        with Registry.open(url) as registry:
            registry.check("p7", "transport.air")
            registry.check("someone-new", "transport.air")
    finally:
        monkeypatch.undo()
    return steps[0]


def test_opening_and_checking_cost_the_same_whatever_the_ledger_size(tmp_path, monkeypatch):
    costs = {}
    for entries in (100, 10_000):
        url = f"sqlite:///{tmp_path}/r{entries}.db"
        with Registry.init(url, "rongcheng") as registry:
            registry.ingest([event(f"p{i % 500}", "traffic.violation", f"2026-01-{1 + i % 28:02d}T08:00:00Z", i)
                             for i in range(entries)])
        costs[entries] = _work_to_open_and_check(url, monkeypatch)
    # A hundred times the entries: a scan would cost about a hundred times the work.
    assert costs[10_000] < 2 * costs[100] + 50, costs


def test_a_new_registrys_schema_is_one_transaction_all_or_nothing(tmp_path, monkeypatch):
    """The migrations of a new SQLite registry run in one transaction (one commit, not one per
    CREATE): a failure in the last of them leaves no table of the first."""
    import alembic.op

    create_table = alembic.op.create_table

    def failing_at_the_last_migration(name, *columns, **kwargs):
        if name == "fold_states":  # migration 0007
            raise RuntimeError("the disk is full")
        return create_table(name, *columns, **kwargs)

    monkeypatch.setattr(alembic.op, "create_table", failing_at_the_last_migration)
    path = tmp_path / "r.db"
    try:
        Registry.init(f"sqlite:///{path}", "rongcheng", key_file=tmp_path / "k").close()
    except Exception as exc:
        assert "the disk is full" in str(exc)
    else:
        raise AssertionError("init went on past a failed migration")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []
