"""cameos: consent-gated likeness

Revision ID: 0004
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cameo_challenges",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("digits", sa.String(length=16), nullable=False),
        sa.Column("turns", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cameo_challenges_user_id", "cameo_challenges", ["user_id"])
    op.create_table(
        "cameos",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("handle", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("policy", sa.String(length=20), nullable=False),
        sa.Column("preferences", sa.Text(), nullable=True),
        sa.Column("blocked_terms", sa.JSON(), nullable=True),
        sa.Column("challenge_id", sa.String(length=64), nullable=False),
        sa.Column("verification", sa.JSON(), nullable=True),
        sa.Column("face_embedding", sa.JSON(), nullable=True),
        sa.Column("voice_embedding", sa.JSON(), nullable=True),
        sa.Column("upload_key", sa.String(length=255), nullable=True),
        sa.Column("keep_upload", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("verified_at", sa.BigInteger(), nullable=True),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
        sa.Column("purge_after", sa.BigInteger(), nullable=True),
        sa.Column("purged_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
        sa.UniqueConstraint("handle"),
    )
    op.create_index("ix_cameos_owner_id", "cameos", ["owner_id"])
    op.create_table(
        "cameo_grants",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cameo_id", sa.String(length=64), nullable=False),
        sa.Column("grantee_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["cameo_id"], ["cameos.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["grantee_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_cameo_grants_cameo_id", "cameo_grants", ["cameo_id"])
    op.create_index("ix_cameo_grants_grantee_id", "cameo_grants", ["grantee_id"])
    op.create_index("ux_cameo_grants_pair", "cameo_grants", ["cameo_id", "grantee_id"], unique=True)
    op.create_table(
        "cameo_uses",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("cameo_id", sa.String(length=64), nullable=False),
        sa.Column("video_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("taken_down_at", sa.BigInteger(), nullable=True),
        sa.Column("takedown_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["cameo_id"], ["cameos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_cameo_uses_cameo_id", "cameo_uses", ["cameo_id"])
    op.create_index("ix_cameo_uses_video_id", "cameo_uses", ["video_id"])
    op.create_index("ux_cameo_uses_pair", "cameo_uses", ["cameo_id", "video_id"], unique=True)
    op.create_table(
        "cameo_audit",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("cameo_id", sa.String(length=64), nullable=True),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("prev_hash"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_cameo_audit_owner_id", "cameo_audit", ["owner_id"])


def downgrade() -> None:
    op.drop_table("cameo_audit")
    op.drop_table("cameo_uses")
    op.drop_table("cameo_grants")
    op.drop_table("cameos")
    op.drop_table("cameo_challenges")
