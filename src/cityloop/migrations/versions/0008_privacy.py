"""Personal data's life cycle: retention rules, erased contacts' keyed digests, citizens'
access and erasure requests, and the log of staff views of reporters' contacts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cityloop.db import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_rules",
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.CheckConstraint("months BETWEEN 1 AND 240", name=op.f("ck_retention_rules_months")),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_retention_rules")),
    )
    op.create_table(
        "erased_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("phone_digest", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=20), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("erased_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erased_contacts")),
    )
    with op.batch_alter_table("erased_contacts", schema=None) as batch_op:
        batch_op.create_index("ix_erased_contacts_digest", ["phone_digest"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_erased_contacts_subject_id"), ["subject_id"], unique=False
        )
    op.create_table(
        "data_subject_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("phone_digest", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("handled_by", sa.Integer(), nullable=False),
        sa.Column("handled_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("records_found", sa.Integer(), nullable=False),
        sa.Column("records_erased", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('access', 'erasure')", name=op.f("ck_data_subject_requests_kind")
        ),
        sa.ForeignKeyConstraint(
            ["handled_by"], ["users.id"], name=op.f("fk_data_subject_requests_handled_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_subject_requests")),
    )
    op.create_table(
        "contact_views",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_name", sa.String(length=60), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("ticket", sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_contact_views_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_views")),
    )
    with op.batch_alter_table("contact_views", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_views_at"), ["at"], unique=False)
        batch_op.create_index(
            "ix_contact_views_subject", ["subject_type", "subject_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_contact_views_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("contact_views")
    op.drop_table("data_subject_requests")
    op.drop_table("erased_contacts")
    op.drop_table("retention_rules")
