"""The registry as a service: principals and their keys, idempotency records, submissions.

`principals` holds who may call the HTTP API, in which role, with which grants, and (for a
subject) which pseudonym the key is bound to. A key is stored only as its public id and an
Argon2id hash of the whole key; revoking keeps the row (the audit log names it) and sets
`revoked_us`. `changed_us` moves on every change.

`idempotency` remembers, per principal and `Idempotency-Key`, the request's fingerprint and,
once it is done, the response it got, so a retry returns the same answer and writes nothing.
A request in flight holds a lease (`owner`, `lease_until_us`) that a retry may take over once
the owner is gone.

`submissions` keeps what each batch of events sent over HTTP came to (the ingest result), so
a provider can read the results of its own submissions later.

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("grants", sa.Text, nullable=False),  # a JSON list of patterns
        sa.Column("subject", sa.String(64)),  # a subject key's pseudonym
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False),  # Argon2id, PHC string
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked_us", sa.BigInteger),
        sa.Column("revoked_by", sa.String(200)),
        sa.Column("changed_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("key_id", name="uq_principals_key_id"),
    )
    op.create_table(
        "idempotency",
        sa.Column("principal", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),  # SHA-256 of method, path, query, body
        sa.Column("state", sa.String(10), nullable=False),  # pending | done
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("lease_until_us", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("content_type", sa.String(100)),
        sa.Column("response", sa.Text),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("completed_us", sa.BigInteger),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_idempotency_created", "idempotency", ["created_us"])
    op.create_table(
        "submissions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("principal", sa.String(100), nullable=False),
        sa.Column("recorded_us", sa.BigInteger, nullable=False),
        sa.Column("result", sa.Text, nullable=False),  # the ingest result as JSON
        sqlite_with_rowid=False,
    )
    op.create_index("ix_submissions_principal", "submissions", ["principal", "recorded_us"])


def downgrade() -> None:
    op.drop_index("ix_submissions_principal", "submissions")
    op.drop_table("submissions")
    op.drop_index("ix_idempotency_created", "idempotency")
    op.drop_table("idempotency")
    op.drop_table("principals")
