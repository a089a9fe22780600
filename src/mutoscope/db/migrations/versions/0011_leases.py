"""video leases: which worker holds a running job and until when; which attempt's files are published

Revision ID: 0011
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("assets_attempt", sa.Integer(), nullable=True))
        batch.create_index("ix_videos_lease", ["status", "lease_expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_index("ix_videos_lease")
        batch.drop_column("assets_attempt")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
