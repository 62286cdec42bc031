"""owners: who created each job, image set, run and model (NULL without sign-in)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OWNED = ("jobs", "image_sets", "runs", "models")


def upgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner", sa.String(length=320), nullable=True))


def downgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("owner")
