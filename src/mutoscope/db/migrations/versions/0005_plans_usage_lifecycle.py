"""plans, usage and lifecycle

Revision ID: 0005
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("plan", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("export_offered_at", sa.BigInteger(), nullable=True))
    op.create_table(
        "usage_periods",
        sa.Column("user_id", sa.String(length=64), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("spent", sa.Float(), nullable=False),
        sa.Column("reserved", sa.Float(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "period"),
    )
    op.create_table(
        "usage_records",
        sa.Column("video_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("settled_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("video_id"),
    )
    op.create_index("ix_usage_records_user_id", "usage_records", ["user_id"])
    op.create_table(
        "model_lifecycle",
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("deprecated_at", sa.BigInteger(), nullable=False),
        sa.Column("shutdown_at", sa.BigInteger(), nullable=False),
        sa.Column("replacement", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("model"),
    )
    op.create_table(
        "service_schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_at", sa.BigInteger(), nullable=False),
        sa.Column("no_new_generations_at", sa.BigInteger(), nullable=False),
        sa.Column("export_only_at", sa.BigInteger(), nullable=False),
        sa.Column("deletion_at", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("service_schedule")
    op.drop_table("model_lifecycle")
    op.drop_index("ix_usage_records_user_id", table_name="usage_records")
    op.drop_table("usage_records")
    op.drop_table("usage_periods")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("export_offered_at")
        batch.drop_column("plan")
