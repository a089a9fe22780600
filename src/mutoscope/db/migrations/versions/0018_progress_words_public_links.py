"""progress in words (a running video's phase, step and time left beside its percentage) and public links
(a random link id and its expiry per video)

Revision ID: 0018
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("progress_detail", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("public_link_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("public_link_expires_at", sa.Integer(), nullable=True))
        batch.create_index("ux_videos_public_link_id", ["public_link_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_index("ux_videos_public_link_id")
        batch.drop_column("public_link_expires_at")
        batch.drop_column("public_link_id")
        batch.drop_column("progress_detail")
