"""cameo voice: the owner's separate consent to use their voice, and whether a voice sample is kept

Revision ID: 0017
Revises: 0001 (after 0004, which makes cameos)
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0001"
branch_labels = None
depends_on = "0004"


def upgrade() -> None:
    with op.batch_alter_table("cameos") as batch:
        batch.add_column(sa.Column("voice_consent", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("voice_sample_key", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cameos") as batch:
        batch.drop_column("voice_sample_key")
        batch.drop_column("voice_consent")
