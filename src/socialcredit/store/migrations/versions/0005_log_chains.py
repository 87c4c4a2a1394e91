"""Tamper evidence beyond the entries: the logs as hash chains, their heads in checkpoints, the key anchored.

The decision log and the audit log become hash chains (ledger/chains.py): every row gets
its position (`seq`) and chain hash (`chain`), `log_heads` holds each log's head, and every
checkpoint from now on records both heads, so that a log rewritten behind the registry's
back no longer agrees with the checkpoints written after it.

An existing registry gets its chains built here from the rows it has, in the order they
were logged: decisions by (recorded_us, id) (ids are ordered within a process only), audit
records by id. Then the logs become append-only in the database itself, like the ledger.

The ledger anchors the pseudonym key's fingerprint: a registry created from now on carries
it in entry #0; an older one gets a `key` entry here, appended to the ledger (with its
subtree nodes and a checkpoint that also records the freshly built heads), holding the
fingerprint its meta table names at the upgrade. Whatever meta says then is what is
anchored: the upgrade trusts the registry as it finds it.

Revision ID: 0005
Revises: 0004
"""

import json

from alembic import op
import sqlalchemy as sa

from socialcredit.instants import now_us
from socialcredit.ledger import chains, merkle, subtrees
from socialcredit.ledger.entries import KEY, Entry

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BATCH = 20_000  # rows hashed per read
_LOGS = {  # log → (table, how its rows were ordered as they were logged, the key of a row)
    chains.DECISIONS: ("decisions", ("recorded_us", "id"), "id"),
    chains.AUDIT: ("audit", ("id",), "id"),
}


def upgrade() -> None:
    for table in ("decisions", "audit"):
        op.add_column(table, sa.Column("seq", sa.BigInteger))
        op.add_column(table, sa.Column("chain", sa.LargeBinary(32)))
    for column, kind in (("decisions_size", sa.BigInteger), ("decisions_head", sa.LargeBinary(32)),
                         ("audit_size", sa.BigInteger), ("audit_head", sa.LargeBinary(32))):
        op.add_column("checkpoints", sa.Column(column, kind))
    log_heads = op.create_table(
        "log_heads",
        sa.Column("log", sa.String(16), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("head", sa.LargeBinary(32), nullable=False),
    )
    conn = op.get_bind()
    heads = {log: _build_chain(conn, log) for log in chains.LOGS}
    conn.execute(log_heads.insert(), [{"log": log, "size": size, "head": head} for log, (size, head) in heads.items()])
    op.create_index("ux_decisions_seq", "decisions", ["seq"], unique=True)
    op.create_index("ux_audit_seq", "audit", ["seq"], unique=True)
    for table in ("decisions", "audit"):
        _forbid_rewriting(table)
    _anchor_the_key(conn, heads)


def _build_chain(conn, log: str) -> tuple[int, bytes]:
    """Number and chain the log's rows in the order they were logged, a batch at a time; its head."""
    table, order, key = _LOGS[log]
    fields = chains.DECISION_FIELDS if log == chains.DECISIONS else chains.AUDIT_FIELDS
    allowed = fields.index("allowed") if "allowed" in fields else None
    ordered = ", ".join(order)
    index = f"tmp_{table}_order"
    if len(order) > 1:  # keyset pagination on (recorded_us, id) needs an index for the time being
        conn.execute(sa.text(f"CREATE INDEX {index} ON {table} ({ordered})"))
    select = f"SELECT {', '.join(order)}, {key}, {', '.join(fields)} FROM {table}"
    after = f" WHERE ({ordered}) > ({', '.join(':' + c for c in order)})"
    size, head, last = 0, chains.genesis(log), None
    while True:
        query = select + ("" if last is None else after) + f" ORDER BY {ordered} LIMIT {_BATCH}"
        rows = conn.execute(sa.text(query), dict(zip(order, last or ()))).all()
        updates = []
        for row in rows:
            values = list(row[len(order) + 1:])
            if allowed is not None:
                values[allowed] = bool(values[allowed])  # SQLite stores 0/1
            head = chains.link(head, tuple(values))
            updates.append({"k": row[len(order)], "s": size, "c": head})
            size += 1
        if updates:
            conn.execute(sa.text(f"UPDATE {table} SET seq = :s, chain = :c WHERE {key} = :k"), updates)
        if len(rows) < _BATCH:
            break
        last = tuple(rows[-1][: len(order)])
    if len(order) > 1:
        conn.execute(sa.text(f"DROP INDEX {index}"))
    return size, head


def _anchor_the_key(conn, heads: dict[str, tuple[int, bytes]]) -> None:
    """Append a key entry to a registry whose ledger does not anchor its key's fingerprint yet."""
    fingerprint = conn.execute(sa.text("SELECT value FROM meta WHERE name = 'key_fingerprint'")).scalar()
    checkpoint = conn.execute(sa.text("SELECT size, frontier FROM checkpoints ORDER BY size DESC LIMIT 1")).first()
    if fingerprint is None or checkpoint is None:
        return  # no registry in this database yet: init anchors the key in entry #0
    first = conn.execute(sa.text("SELECT body FROM entries WHERE seq = 0")).scalar()
    if first is not None and "key_fingerprint" in json.loads(first):
        return
    if conn.execute(sa.text(f"SELECT 1 FROM entries WHERE kind = '{KEY}' LIMIT 1")).first() is not None:
        return  # anchored by an earlier upgrade (this one was undone and is done again)
    size, frontier_text = checkpoint
    if conn.execute(sa.text("SELECT 1 FROM entries WHERE seq = :s"), {"s": size}).first() is not None:
        return  # an entry beyond the last checkpoint: not the registry's; verify reports it (and no anchor)
    entry = Entry(size, KEY, now_us(), key_fingerprint=fingerprint)
    body = entry.canonical()
    leaf = merkle.leaf_hash(body.encode("utf-8"))
    frontier = merkle.Frontier.from_json(size, json.loads(frontier_text))
    nodes = subtrees.append_leaf(frontier, leaf)
    conn.execute(sa.text("INSERT INTO entries (seq, kind, recorded_us, body, leaf_hash) VALUES (:s, :k, :r, :b, :h)"),
                 {"s": size, "k": KEY, "r": entry.recorded_us, "b": body, "h": leaf})
    if nodes:
        conn.execute(sa.text("INSERT INTO merkle_nodes (level, idx, hash) VALUES (:l, :i, :h)"),
                     [{"l": level, "i": index, "h": digest} for level, index, digest in nodes])
    (decisions_size, decisions_head), (audit_size, audit_head) = heads[chains.DECISIONS], heads[chains.AUDIT]
    conn.execute(sa.text("INSERT INTO checkpoints (size, root, frontier, recorded_us, decisions_size, decisions_head, "
                         "audit_size, audit_head) VALUES (:s, :r, :f, :t, :ds, :dh, :as_, :ah)"),
                 {"s": frontier.size, "r": frontier.root(), "f": json.dumps(frontier.to_json()), "t": now_us(),
                  "ds": decisions_size, "dh": decisions_head, "as_": audit_size, "ah": audit_head})


def _forbid_rewriting(table: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'the {table} log is append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION 'the {table} log is append-only'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in ("decisions", "audit"):
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
        op.drop_index(f"ux_{table}_seq", table)
        op.drop_column(table, "chain")
        op.drop_column(table, "seq")
    for column in ("audit_head", "audit_size", "decisions_head", "decisions_size"):
        op.drop_column("checkpoints", column)
    op.drop_table("log_heads")
