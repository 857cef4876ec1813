"""the admin's choice of the model that serves patients; which model wrote each answer

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_choice",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("engine_ref", sa.String(length=1000), nullable=True),
        sa.Column("chosen_by", sa.Uuid(), nullable=True),
        sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(["chosen_by"], ["users.id"], ondelete="SET NULL"),
        sa.CheckConstraint("id = 1", name="serving_choice_one_row"),
    )
    op.add_column("messages", sa.Column("model", sa.String(length=300), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "model")
    op.drop_table("serving_choice")
