"""usage counters per API key

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("requests", "prompt_tokens", "completion_tokens")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column(
            "api_keys", sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    for name in COLUMNS:
        op.drop_column("api_keys", name)
