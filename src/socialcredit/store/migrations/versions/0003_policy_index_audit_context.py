"""Policy activations found without a scan; the audit log says in which role and why.

Opening a registry reads the policy activations. Without an index that is a scan of the
whole ledger (1.4 s at a million entries); a partial index holds just the activations, so
opening costs the same at 100 entries and at 10 million.

Audit records gain the caller's role and purpose: who read a record matters less without
knowing in what capacity and for what. Decisions are audit records too (the audit log shows
them from the decision log, rather than writing each twice), so they gain the same columns
and an index by subject: a subject asks which decisions were made about them.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    only_policies = sa.text("kind = 'policy'")
    op.create_index("ix_entries_policy", "entries", ["seq"], sqlite_where=only_policies,
                    postgresql_where=only_policies)
    op.add_column("audit", sa.Column("role", sa.String(40)))
    op.add_column("audit", sa.Column("purpose", sa.Text))
    op.add_column("decisions", sa.Column("role", sa.String(40)))
    op.add_column("decisions", sa.Column("purpose", sa.Text))
    op.create_index("ix_decisions_subject", "decisions", ["subject"])


def downgrade() -> None:
    op.drop_index("ix_decisions_subject", "decisions")
    op.drop_column("decisions", "purpose")
    op.drop_column("decisions", "role")
    op.drop_column("audit", "purpose")
    op.drop_column("audit", "role")
    op.drop_index("ix_entries_policy", "entries")
