"""Trust model: assignments only controllers set, token expiry, per-host holds and overrides, audit trail.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

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


    op.create_table(
        "host_update_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host_name", sa.String(255), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("hold", "override", name="host_rule_kind", native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column("update_id", sa.String(36), nullable=True),
        sa.Column("kb", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(255), nullable=True),
        sa.CheckConstraint(
            "(update_id IS NULL) != (kb IS NULL)", name=op.f("ck_host_update_rules_update_id_or_kb")
        ),
    )
    op.create_index(op.f("ix_host_update_rules_host_name"), "host_update_rules", ["host_name"])

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    )
    op.create_index(op.f("ix_audit_events_at"), "audit_events", ["at"])
    op.create_index(op.f("ix_audit_events_action"), "audit_events", ["action"])


def downgrade() -> None:
    op.drop_table("audit_events")
    op.drop_table("host_update_rules")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("assignment_set_by")
        batch.drop_column("assignment_set_at")
