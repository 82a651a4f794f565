"""Hardening (issue 23): the body fingerprint an Idempotency-Key was first sent with, and the
per-address budget of anonymous uploads counted in the login throttle's table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("idempotency_fingerprint", sa.String(length=64), nullable=True)
        )
    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_login_throttles_kind"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_login_throttles_kind"), "kind IN ('account', 'address', 'uploads')"
        )


def downgrade() -> None:
    op.execute("DELETE FROM login_throttles WHERE kind = 'uploads'")
    with op.batch_alter_table("login_throttles", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_login_throttles_kind"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_login_throttles_kind"), "kind IN ('account', 'address')"
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("idempotency_fingerprint")
