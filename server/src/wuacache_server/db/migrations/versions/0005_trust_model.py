"""Trust model: assignments only controllers set, token expiry.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Assignments stored so far were set by whoever reported, host tokens
    # included: none counts as set, so the default assignment judges those
    # hosts until a controller sets theirs.
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("assignment_set_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("assignment_set_by", sa.String(255), nullable=True))

    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("assignment_set_by")
        batch.drop_column("assignment_set_at")
