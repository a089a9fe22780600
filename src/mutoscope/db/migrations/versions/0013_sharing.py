"""sharing: a video's visibility (private, unlisted, everyone) and the token of its share link

Revision ID: 0013
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("visibility", sa.String(length=20), nullable=False, server_default="private"))
        batch.add_column(sa.Column("share_token", sa.String(length=64), nullable=True))
        batch.create_index("ux_videos_share_token", ["share_token"], unique=True)
        batch.create_index("ix_videos_feed", ["visibility", "seq"])


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_index("ix_videos_feed")
        batch.drop_index("ux_videos_share_token")
        batch.drop_column("share_token")
        batch.drop_column("visibility")
