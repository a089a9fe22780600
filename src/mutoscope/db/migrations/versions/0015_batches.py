"""batches: the Batch API for /v1/videos (a batch's lines are videos tagged with it, refused lines are rows)

Revision ID: 0015
Revises: 0001 (after 0005, which makes usage_records)
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0001"
branch_labels = None
depends_on = "0005"  # usage_records


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(length=64), nullable=False, unique=True),
        sa.Column("owner_id", sa.String(length=64), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("endpoint", sa.String(length=64), nullable=False),
        sa.Column("input_file_id", sa.String(length=64), nullable=False),
        sa.Column("completion_window", sa.String(length=10), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.Column("output_file_id", sa.String(length=64), nullable=True),
        sa.Column("error_file_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        *[sa.Column(c, sa.BigInteger(), nullable=True) for c in (
            "in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at", "cancelling_at",
            "cancelled_at")],
    )
    op.create_index("ix_batches_owner_id", "batches", ["owner_id"])
    op.create_index("ix_batches_status", "batches", ["status"])
    op.create_table(
        "batch_errors",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("custom_id", sa.String(length=64), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=False),
    )
    op.create_index("ix_batch_errors_batch_id", "batch_errors", ["batch_id"])
    op.create_index("ux_batch_errors_line", "batch_errors", ["batch_id", "line"], unique=True)
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("batch_custom_id", sa.String(length=64), nullable=True))
        batch.create_index("ux_videos_batch_line", ["batch_id", "batch_custom_id"], unique=True)
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("holds_slot", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("holds_slot")
    with op.batch_alter_table("videos") as batch:
        batch.drop_index("ux_videos_batch_line")
        batch.drop_column("batch_custom_id")
        batch.drop_column("batch_id")
    op.drop_table("batch_errors")
    op.drop_table("batches")
