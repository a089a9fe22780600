"""progress in words: a running video's phase, step and time left beside its percentage

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


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("progress_detail")
