"""A partial index of open cases by class and h3 cell, for the duplicate search of every
report: it stays as small as the city's open work, however long the history.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# cases.states.OPEN_CASE_SQL as it stood at this revision: the query repeats it word for word.
_OPEN = "state NOT IN ('archived', 'closed', 'merged', 'rejected')"


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_open_class_h3",
            ["class_code", "h3_cell"],
            unique=False,
            postgresql_where=sa.text(_OPEN),
            sqlite_where=sa.text(_OPEN),
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_open_class_h3")
