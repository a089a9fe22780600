"""imported cameos: when a cameo came in by import (it waits for a live verification here), and what an
import did with an archive's cameos (their ids here, grants and uses left behind)

Revision ID: 0019_import_cameos
Revises: 0004 (which makes cameos), after 0006 (which makes imports); alembic cannot depend on two
"""
import sqlalchemy as sa
from alembic import op

revision = "0019_import_cameos"
down_revision = "0004"
branch_labels = None
depends_on = "0006"


def upgrade() -> None:
    with op.batch_alter_table("cameos") as batch:
        batch.add_column(sa.Column("imported_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("imports") as batch:
        batch.add_column(sa.Column("cameos", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("cameos")
    with op.batch_alter_table("cameos") as batch:
        batch.drop_column("imported_at")
