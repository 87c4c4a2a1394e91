"""The database schema, in SQLAlchemy Core. Alembic's migrations create exactly this.

The ledger (`entries`) is the only source of truth; `merkle_nodes` is derived from it as it
grows and never changes; `standings` is derived and can be rebuilt at any time; `decisions`
and `audit` are append-only logs, each a hash chain (ledger/chains.py) whose head is in
`log_heads` and in every checkpoint.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

entries = Table(
    "entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("recorded_us", BigInteger, nullable=False),
    Column("provider", String(200)),
    Column("key", String(200)),
    Column("subject", String(64)),
    Column("type", String(120)),
    Column("occurred_us", BigInteger),
    Column("body", Text, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("actor", String(64)),  # who acted on the subject (a rater); migration 0002
    UniqueConstraint("provider", "key", name="uq_entries_provider_key"),
    Index("ix_entries_subject_seq", "subject", "seq"),
    Index("ix_entries_actor", "actor", "occurred_us", sqlite_where=text("actor IS NOT NULL"),
          postgresql_where=text("actor IS NOT NULL")),
    # migration 0003: the policy activations, read whenever a registry is opened
    Index("ix_entries_policy", "seq", sqlite_where=text("kind = 'policy'"), postgresql_where=text("kind = 'policy'")),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("frontier", Text, nullable=False),
    Column("recorded_us", BigInteger, nullable=False),
    # migration 0005: the logs' heads when this checkpoint was written (none before 0005)
    Column("decisions_size", BigInteger),
    Column("decisions_head", LargeBinary(32)),
    Column("audit_size", BigInteger),
    Column("audit_head", LargeBinary(32)),
)

# The roots of the complete subtrees at the ledger's stored levels (see ledger/subtrees.py),
# so that proofs read a few rows instead of every leaf. Append-only, like `entries`. Migration 0004.
merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,
)

standings = Table(
    "standings",
    metadata,
    Column("subject", String(64), primary_key=True),
    Column("policy_digest", String(64), nullable=False),
    Column("known_size", BigInteger, nullable=False),
    Column("valid_from_us", BigInteger),
    Column("valid_until_us", BigInteger),
    Column("cacheable", Boolean, nullable=False),
    Column("score", Float, nullable=False),
    Column("tier", String(40)),
    Column("body", Text, nullable=False),
)

fold_states = Table(  # migration 0007: each subject's incremental fold state, derived like standings
    "fold_states",
    metadata,
    Column("subject", String(64), primary_key=True),
    Column("policy_digest", String(64), nullable=False),
    Column("known_size", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("subject", String(64), nullable=False),
    Column("service", String(120), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Column("policy_digest", String(64), nullable=False),
    Column("ledger_size", BigInteger, nullable=False),
    Column("allowed", Boolean, nullable=False),
    Column("effect", String(40), nullable=False),
    Column("measures", Text, nullable=False),
    Column("recorded_us", BigInteger, nullable=False),
    Column("principal", String(200), nullable=False),
    Column("role", String(40)),  # migration 0003
    Column("purpose", Text),  # migration 0003: the caller's purpose, if it gave one
    Column("seq", BigInteger),  # migration 0005: the position in the hash chain
    Column("chain", LargeBinary(32)),  # migration 0005: the chain hash up to this row
    Index("ix_decisions_subject", "subject"),  # migration 0003
    Index("ux_decisions_seq", "seq", unique=True),  # migration 0005
    sqlite_with_rowid=False,
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False),
    Column("principal", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("subject", String(64)),
    Column("detail", Text, nullable=False),
    Column("role", String(40)),  # migration 0003
    Column("purpose", Text),  # migration 0003
    Column("seq", BigInteger),  # migration 0005: the position in the hash chain (ids may have gaps)
    Column("chain", LargeBinary(32)),  # migration 0005
    Index("ix_audit_subject", "subject"),
    Index("ux_audit_seq", "seq", unique=True),  # migration 0005
)

# Migration 0005: each log's head (rows, chain hash of the last), moved in the transaction
# that appends to the log; on PostgreSQL its row is locked first, so two processes cannot
# fork a chain.
log_heads = Table(
    "log_heads",
    metadata,
    Column("log", String(16), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("head", LargeBinary(32), nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# The HTTP service (migration 0006): who may call it, idempotency records, submissions.
principals = Table(
    "principals",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("grants", Text, nullable=False),
    Column("subject", String(64)),
    Column("key_id", String(32), nullable=False),
    Column("key_hash", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_us", BigInteger),
    Column("revoked_by", String(200)),
    Column("changed_us", BigInteger, nullable=False),
    UniqueConstraint("key_id", name="uq_principals_key_id"),
)

idempotency = Table(
    "idempotency",
    metadata,
    Column("principal", String(100), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(10), nullable=False),
    Column("owner", String(100), nullable=False),
    Column("lease_until_us", BigInteger, nullable=False),
    Column("status", Integer),
    Column("content_type", String(100)),
    Column("response", Text),
    Column("created_us", BigInteger, nullable=False),
    Column("completed_us", BigInteger),
    Index("ix_idempotency_created", "created_us"),
    sqlite_with_rowid=False,
)

submissions = Table(
    "submissions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("principal", String(100), nullable=False),
    Column("recorded_us", BigInteger, nullable=False),
    Column("result", Text, nullable=False),
    Index("ix_submissions_principal", "principal", "recorded_us"),
    sqlite_with_rowid=False,
)
