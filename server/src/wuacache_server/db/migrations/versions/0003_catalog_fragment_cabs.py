"""Catalog versions remember their fragment cabs' digests, for incremental imports.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# A frozen copy of the column type, as in the initial revision.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("catalog_versions") as batch:
        batch.add_column(sa.Column("fragment_cabs", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_versions") as batch:
        batch.drop_column("fragment_cabs")
