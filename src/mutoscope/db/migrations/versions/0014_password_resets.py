"""password resets: an invite row can be a one-time link that sets a new password for an existing person

Revision ID: 0014
Revises: 0001 (after 0012, which makes invites)
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0001"
branch_labels = None
depends_on = "0012_people_accounts"


def upgrade() -> None:
    with op.batch_alter_table("invites") as batch:
        batch.add_column(sa.Column("for_user_id", sa.String(length=64), nullable=True))
        batch.create_index("ix_invites_for_user_id", ["for_user_id"])
        batch.create_foreign_key("fk_invites_for_user_id", "users", ["for_user_id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("invites") as batch:
        batch.drop_constraint("fk_invites_for_user_id", type_="foreignkey")
        batch.drop_index("ix_invites_for_user_id")
        batch.drop_column("for_user_id")
