"""characters: OpenAI's video characters, bound to a cameo when they show a face

Revision ID: 0009
Revises: 0001
Depends on: 0004 (characters.cameo_id references cameos.id; "heads" may run branches in any order)
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0001"
branch_labels = None
depends_on = "0004"


def upgrade() -> None:
    op.create_table(
        "characters",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("cameo_id", sa.String(length=64), nullable=True),
        sa.Column("reference_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["cameo_id"], ["cameos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_characters_owner_id", "characters", ["owner_id"])
    op.create_index("ix_characters_cameo_id", "characters", ["cameo_id"])


def downgrade() -> None:
    op.drop_index("ix_characters_cameo_id", table_name="characters")
    op.drop_index("ix_characters_owner_id", table_name="characters")
    op.drop_table("characters")
