"""Host plans: the decisions' verdicts, the files each host needs, more of each report.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the column types, as in the initial revision.
GUID = sa.String(36)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("host_updates") as batch:
        batch.add_column(sa.Column("title", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("allowed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("delayed_until", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("host_reports") as batch:
        batch.add_column(sa.Column("cab_date", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("scan_duration_seconds", sa.Double(), nullable=True))
        batch.add_column(sa.Column("wuauserv_state", sa.String(32), nullable=True))
        batch.add_column(sa.Column("rule_sets", JSON, nullable=False, server_default=sa.text("'{}'")))
        batch.add_column(sa.Column("warnings", JSON, nullable=False, server_default=sa.text("'[]'")))

    op.create_table(
        "host_update_files",
        sa.Column("host_id", sa.Integer(), primary_key=True),
        sa.Column("update_id", GUID, primary_key=True),
        sa.Column("payload_file_id", sa.Integer(), primary_key=True),
        sa.ForeignKeyConstraint(
            ["host_id", "update_id"],
            ["host_updates.host_id", "host_updates.update_id"],
            name=op.f("fk_host_update_files_host_id_host_updates"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["payload_file_id"],
            ["payload_files.id"],
            name=op.f("fk_host_update_files_payload_file_id_payload_files"),
            ondelete="CASCADE",
        ),
    )
    op.create_index(op.f("ix_host_update_files_payload_file_id"), "host_update_files", ["payload_file_id"])


def downgrade() -> None:
    op.drop_table("host_update_files")
    with op.batch_alter_table("host_reports") as batch:
        for column in ("warnings", "rule_sets", "wuauserv_state", "scan_duration_seconds", "cab_date"):
            batch.drop_column(column)
    with op.batch_alter_table("host_updates") as batch:
        for column in ("delayed_until", "allowed", "title"):
            batch.drop_column(column)
