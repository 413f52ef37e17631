"""Initial schema: the catalog, hosts and their decisions, rule sets, downloads, runs, API tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types, so that later changes to the models never
# change what this revision does.
GUID = sa.String(36)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column[Any]:
    return sa.Column(name, JSON, nullable=False)


def _revision_reference(name: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [name], ["updates.revision_id"], name=op.f(f"fk_{table}_{name}_updates"), ondelete="CASCADE"
    )


def _index(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])


TABLES = (
    "catalog_versions",
    "cab_sync_runs",
    "categories",
    "updates",
    "bundle_members",
    "supersedence",
    "payload_files",
    "child_files",
    "hosts",
    "host_updates",
    "host_reports",
    "rule_sets",
    "download_tasks",
    "cleanup_runs",
    "api_tokens",
)


def upgrade() -> None:
    op.create_table(
        "catalog_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("package_id", GUID, nullable=False),
        sa.Column("package_version", sa.String(32), nullable=False),
        _timestamp("creation_date"),
        _timestamp("imported_at"),
        sa.UniqueConstraint("sha256", name=op.f("uq_catalog_versions_sha256")),
    )

    op.create_table(
        "cab_sync_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        sa.Column("status", _enum("cab_sync_status", "running", "finished", "unchanged", "failed"), nullable=False),
        sa.Column("reason", _enum("cab_sync_reason", "missing", "newer", "forced", "unchanged"), nullable=True),
        sa.Column("bytes_downloaded", sa.BigInteger(), nullable=False),
        sa.Column("duration_seconds", sa.Double(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("etag", sa.String(255), nullable=True),
        _timestamp("last_modified", nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
    )
    _index("cab_sync_runs", "started_at", "status")

    op.create_table(
        "categories",
        sa.Column("update_id", GUID, primary_key=True),
        sa.Column(
            "category_type",
            _enum("category_type", "Company", "ProductFamily", "Product", "UpdateClassification"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=True),
    )
    _index("categories", "category_type")

    op.create_table(
        "updates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("update_id", GUID, nullable=False),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("update_kind", "bundle", "child", "category", "detectoid", "other"), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _json("kb_ids"),
        sa.Column("msrc_severity", sa.String(32), nullable=True),
        sa.Column("product_id", GUID, nullable=True),
        sa.Column("classification_id", GUID, nullable=True),
        _timestamp("creation_date"),
        sa.Column("is_superseded", sa.Boolean(), nullable=False),
        sa.Column("reboot_behavior", sa.String(32), nullable=True),
        sa.Column("min_download_size", sa.BigInteger(), nullable=True),
        sa.Column("max_download_size", sa.BigInteger(), nullable=True),
        sa.Column("catalog_version_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["catalog_version_id"],
            ["catalog_versions.id"],
            name=op.f("fk_updates_catalog_version_id_catalog_versions"),
        ),
        sa.UniqueConstraint("revision_id", name=op.f("uq_updates_revision_id")),
        sa.UniqueConstraint("update_id", "revision_number", name=op.f("uq_updates_update_id_revision_number")),
    )
    _index(
        "updates",
        "kind",
        "msrc_severity",
        "product_id",
        "classification_id",
        "creation_date",
        "is_superseded",
        "catalog_version_id",
    )

    op.create_table(
        "bundle_members",
        sa.Column("bundle_revision_id", sa.Integer(), primary_key=True),
        sa.Column("child_revision_id", sa.Integer(), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        _revision_reference("bundle_revision_id", "bundle_members"),
        _revision_reference("child_revision_id", "bundle_members"),
    )
    _index("bundle_members", "child_revision_id")

    op.create_table(
        "supersedence",
        sa.Column("superseded_revision_id", sa.Integer(), primary_key=True),
        sa.Column("superseding_revision_id", sa.Integer(), primary_key=True),
        _revision_reference("superseded_revision_id", "supersedence"),
        _revision_reference("superseding_revision_id", "supersedence"),
    )
    _index("supersedence", "superseding_revision_id")

    op.create_table(
        "payload_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sha1", sa.String(28), nullable=False),
        sa.Column("sha256", sa.String(44), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        _timestamp("stored_at", nullable=True),
        sa.Column("stored_size", sa.BigInteger(), nullable=True),
        sa.UniqueConstraint("sha1", name=op.f("uq_payload_files_sha1")),
    )
    _index("payload_files", "file_name", "stored_at")

    op.create_table(
        "child_files",
        sa.Column("child_revision_id", sa.Integer(), primary_key=True),
        sa.Column("payload_file_id", sa.Integer(), primary_key=True),
        _revision_reference("child_revision_id", "child_files"),
        sa.ForeignKeyConstraint(
            ["payload_file_id"],
            ["payload_files.id"],
            name=op.f("fk_child_files_payload_file_id_payload_files"),
            ondelete="CASCADE",
        ),
    )
    _index("child_files", "payload_file_id")

    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("os_caption", sa.String(255), nullable=True),
        sa.Column("os_build", sa.String(64), nullable=True),
        sa.Column("os_architecture", sa.String(32), nullable=True),
        sa.Column("wua_version", sa.String(64), nullable=True),
        sa.Column("cab_sha256", sa.String(64), nullable=True),
        _timestamp("last_report_at", nullable=True),
        sa.Column("reboot_pending", sa.Boolean(), nullable=False),
        _json("assignment"),
        sa.UniqueConstraint("name", name=op.f("uq_hosts_name")),
    )
    _index("hosts", "last_report_at")

    op.create_table(
        "host_updates",
        sa.Column("host_id", sa.Integer(), primary_key=True),
        sa.Column("update_id", GUID, primary_key=True),
        sa.Column("revision_number", sa.Integer(), nullable=False),
        sa.Column("is_installed", sa.Boolean(), nullable=False),
        sa.Column("is_hidden", sa.Boolean(), nullable=False),
        sa.Column("is_downloaded", sa.Boolean(), nullable=False),
        sa.Column("last_result_code", sa.Integer(), nullable=True),
        sa.Column("last_hresult", sa.BigInteger(), nullable=True),
        sa.Column(
            "status",
            _enum("host_update_status", "OK", "PENDING", "MISSING", "DISCARDED", "ERROR"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        _json("reported_urls"),
        _timestamp("decided_at"),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_host_updates_host_id_hosts"), ondelete="CASCADE"
        ),
    )
    _index("host_updates", "status", "update_id")

    op.create_table(
        "host_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("host_id", sa.Integer(), nullable=False),
        _timestamp("received_at"),
        sa.Column("cab_sha256", sa.String(64), nullable=True),
        sa.Column("update_count", sa.Integer(), nullable=False),
        _json("counts"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name=op.f("fk_host_reports_host_id_hosts"), ondelete="CASCADE"
        ),
    )
    _index("host_reports", "host_id", "received_at")

    op.create_table(
        "rule_sets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("maturity", sa.String(32), nullable=True),
        *(
            _json(f"{verdict}_{subject}")
            for subject in ("updates", "kbs", "products", "classifications", "severities")
            for verdict in ("allowed", "forbidden")
        ),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.UniqueConstraint("name", name=op.f("uq_rule_sets_name")),
    )
    _index("rule_sets", "maturity")

    op.create_table(
        "download_tasks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("payload_file_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            _enum("download_task_status", "waiting", "running", "completed", "failed", "canceled"),
            nullable=False,
        ),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("started_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["payload_file_id"],
            ["payload_files.id"],
            name=op.f("fk_download_tasks_payload_file_id_payload_files"),
            ondelete="CASCADE",
        ),
    )
    _index("download_tasks", "payload_file_id", "status")
    # At most one waiting or running download per file (SQLite and PostgreSQL
    # both have partial indexes).
    active = sa.text("status IN ('waiting', 'running')")
    op.create_index(
        "uq_download_tasks_active_payload_file_id",
        "download_tasks",
        ["payload_file_id"],
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )

    op.create_table(
        "cleanup_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        sa.Column("files_removed", sa.Integer(), nullable=False),
        sa.Column("bytes_freed", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    _index("cleanup_runs", "started_at")

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", _enum("token_role", "admin", "controller", "host"), nullable=False),
        sa.Column("host_name", sa.String(255), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        sa.CheckConstraint(
            "(role = 'host') = (host_name IS NOT NULL)", name=op.f("ck_api_tokens_host_name_for_host_role")
        ),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    _index("api_tokens", "host_name", "revoked_at")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
