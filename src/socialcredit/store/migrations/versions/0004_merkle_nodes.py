"""Stored subtree nodes: proofs read a few rows instead of every leaf.

`merkle_nodes` holds the root of every complete subtree whose height is a multiple of the
stratum (ledger/subtrees.py). It is append-only like `entries`, in the database itself. An
existing registry gets the nodes of its stored leaf hashes here, read in seq order a batch
at a time, so a large ledger is never in memory at once.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Iterator

from alembic import op
import sqlalchemy as sa

from socialcredit.ledger.merkle import Frontier
from socialcredit.ledger.subtrees import append_leaves

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_BATCH = 50_000  # leaf hashes per read: 1.6 MB


def upgrade() -> None:
    merkle_nodes = op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sqlite_with_rowid=False,
    )
    _forbid_rewriting_the_nodes()
    conn = op.get_bind()
    frontier = Frontier()
    for leaves in _stored_leaf_batches(conn):
        nodes = append_leaves(frontier, leaves)
        if nodes:
            conn.execute(merkle_nodes.insert(), [{"level": level, "idx": index, "hash": digest}
                                                 for level, index, digest in nodes])


def _stored_leaf_batches(conn) -> Iterator[list[bytes]]:
    """The stored leaf hashes in seq order, a batch at a time, up to the first missing entry.

    Past a missing entry no node can be computed; `verify` reports the deletion and the nodes
    that are missing because of it.
    """
    query = sa.text("SELECT seq, leaf_hash FROM entries WHERE seq >= :start ORDER BY seq LIMIT :limit")
    expected = 0
    while True:
        rows = conn.execute(query, {"start": expected, "limit": _BATCH}).all()
        leaves = []
        for seq, leaf in rows:
            if seq != expected:
                break
            leaves.append(bytes(leaf))
            expected += 1
        if leaves:
            yield leaves
        if len(leaves) < _BATCH:
            return


def _forbid_rewriting_the_nodes() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER merkle_nodes_no_{action.lower()} BEFORE {action} ON merkle_nodes "
                "BEGIN SELECT RAISE(ABORT, 'merkle nodes are append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION merkle_nodes_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'merkle nodes are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER merkle_nodes_append_only BEFORE UPDATE OR DELETE ON merkle_nodes "
            "FOR EACH ROW EXECUTE FUNCTION merkle_nodes_append_only()"
        )
        op.execute(
            "CREATE TRIGGER merkle_nodes_no_truncate BEFORE TRUNCATE ON merkle_nodes "
            "FOR EACH STATEMENT EXECUTE FUNCTION merkle_nodes_append_only()"
        )


def downgrade() -> None:
    op.drop_table("merkle_nodes")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS merkle_nodes_append_only()")
