"""The initial schema: ledger, checkpoints, standings, decisions, audit, meta.

The ledger refuses UPDATE and DELETE in the database itself, so that even a bug or a
careless script cannot rewrite history quietly (someone who drops the trigger can, and
`verify` is there to catch that).

Revision ID: 0001
Revises:
"""

from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("recorded_us", sa.BigInteger, nullable=False),
        sa.Column("provider", sa.String(200)),
        sa.Column("key", sa.String(200)),
        sa.Column("subject", sa.String(64)),
        sa.Column("type", sa.String(120)),
        sa.Column("occurred_us", sa.BigInteger),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.UniqueConstraint("provider", "key", name="uq_entries_provider_key"),
    )
    op.create_index("ix_entries_subject_seq", "entries", ["subject", "seq"])
    op.create_table(
        "checkpoints",
        sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("frontier", sa.Text, nullable=False),
        sa.Column("recorded_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "standings",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("policy_digest", sa.String(64), nullable=False),
        sa.Column("known_size", sa.BigInteger, nullable=False),
        sa.Column("valid_from_us", sa.BigInteger),
        sa.Column("valid_until_us", sa.BigInteger),
        sa.Column("cacheable", sa.Boolean, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("tier", sa.String(40)),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("service", sa.String(120), nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("policy_digest", sa.String(64), nullable=False),
        sa.Column("ledger_size", sa.BigInteger, nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        sa.Column("effect", sa.String(40), nullable=False),
        sa.Column("measures", sa.Text, nullable=False),
        sa.Column("recorded_us", sa.BigInteger, nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        # No index on subject: decisions arrive at 100,000 a second in random subject order,
        # and an index on it would cost more than the rest of the log together. Ids are
        # time-ordered per process, so the primary key grows at its end.
        sqlite_with_rowid=False,
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(64)),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_subject", "audit", ["subject"])
    op.create_table(
        "meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    _forbid_rewriting_the_ledger()


def _forbid_rewriting_the_ledger() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER entries_no_{action.lower()} BEFORE {action} ON entries "
                "BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'ledger entries are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries "
            "FOR EACH ROW EXECUTE FUNCTION entries_append_only()"
        )
        op.execute(
            "CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries "
            "FOR EACH STATEMENT EXECUTE FUNCTION entries_append_only()"
        )


def downgrade() -> None:
    for name in ("meta", "audit", "decisions", "standings", "checkpoints", "entries"):
        op.drop_table(name)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS entries_append_only()")
