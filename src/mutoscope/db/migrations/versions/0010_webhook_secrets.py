"""room for sealed webhook secrets

Revision ID: 0010_webhook_secrets
Revises: 0001 (after 0008, which made the table)

A sealed secret is longer than the 100 characters a plaintext `whsec_` secret needed. Sealing the
existing rows is not done here: the key lives outside the database (settings, key file), and a
migration only knows the database URL, so the server seals any plaintext row when it starts
(`webhooks.service.seal_plaintext_secrets`).
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_webhook_secrets"
down_revision = "0001"
branch_labels = None
depends_on = "0008"


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", existing_type=sa.String(length=100), type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", existing_type=sa.Text(), type_=sa.String(length=100), existing_nullable=False)
