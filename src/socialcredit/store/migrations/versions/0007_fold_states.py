"""Fold states: each subject's incremental fold state (scoring/incremental.py).

Derived like `standings`: thrown away by `rebuild`, stamped with the policy it was folded
under, and recomputed from the ledger whenever it cannot be advanced. An existing registry
starts without any: a subject's first append after the upgrade folds its whole history once.

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fold_states",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("policy_digest", sa.String(64), nullable=False),
        sa.Column("known_size", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fold_states")
