"""Entries name their actor: the subject who acted on the subject of the entry (a rater).

A rating is about its ratee (`subject`) but limits and weights depend on its rater: how many
ratings they gave today, how often they rate negatively. The column and its index let the
registry answer that without reading every rating.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("entries", sa.Column("actor", sa.String(64)))
    # Partial: most entries have no actor, and indexing their NULLs would slow every append.
    only_actors = sa.text("actor IS NOT NULL")
    op.create_index("ix_entries_actor", "entries", ["actor", "occurred_us"], sqlite_where=only_actors,
                    postgresql_where=only_actors)


def downgrade() -> None:
    op.drop_index("ix_entries_actor", "entries")
    op.drop_column("entries", "actor")
