"""The field force (issue 16): vehicles and terminals, people's duty, the one positions table
(unique per subject and time; BRIN on time on PostgreSQL), duty events, alerts, roster shifts,
road segments.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 01:42:27.825126
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cityloop.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleet_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("subject", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("raised_at", cityloop.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", cityloop.db.UtcDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('out_of_grid', 'stale')", name=op.f("ck_fleet_alerts_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_alerts")),
    )
    with op.batch_alter_table("fleet_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fleet_alerts_raised_at"), ["raised_at"], unique=False)
        batch_op.create_index(
            "ix_fleet_alerts_subject", ["subject", "subject_id", "kind"], unique=False
        )

    op.create_table(
        "fleet_positions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("subject", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("at", cityloop.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("speed_kmh", sa.Float(), nullable=True),
        sa.Column("heading", sa.SmallInteger(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("flag", sa.String(length=12), nullable=True),
        sa.CheckConstraint(
            "subject IN ('vehicle', 'person')", name=op.f("ck_fleet_positions_subject")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_positions")),
        sa.UniqueConstraint("subject", "subject_id", "at", name="uq_fleet_positions_track"),
    )
    with op.batch_alter_table("fleet_positions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fleet_positions_at_brin", ["at"], unique=False, postgresql_using="brin"
        )

    op.create_table(
        "fleet_vehicles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plate", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("terminal_phone", sa.String(length=20), nullable=False),
        sa.Column("auth_code", sa.String(length=40), nullable=True),
        sa.Column("registered_at", cityloop.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("last_seen_at", cityloop.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("at", cityloop.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("speed_kmh", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('sweeper', 'sprinkler', 'refuse', 'enforcement', 'patrol', 'other')",
            name=op.f("ck_fleet_vehicles_kind"),
        ),
        sa.CheckConstraint(
            "state IN ('never', 'online', 'stale')", name=op.f("ck_fleet_vehicles_state")
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_fleet_vehicles_department_id_departments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_vehicles")),
        sa.UniqueConstraint("plate", name=op.f("uq_fleet_vehicles_plate")),
        sa.UniqueConstraint("terminal_phone", name=op.f("uq_fleet_vehicles_terminal_phone")),
    )
    with op.batch_alter_table("fleet_vehicles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fleet_vehicles_department_id"), ["department_id"], unique=False
        )

    op.create_table(
        "fleet_duty_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("at", cityloop.db.UtcDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('off', 'on', 'leave', 'out_of_grid')",
            name=op.f("ck_fleet_duty_events_status"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_fleet_duty_events_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_duty_events")),
    )
    with op.batch_alter_table("fleet_duty_events", schema=None) as batch_op:
        batch_op.create_index("ix_fleet_duty_events_user_at", ["user_id", "at"], unique=False)

    op.create_table(
        "fleet_people",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("duty", sa.String(length=12), nullable=False),
        sa.Column("duty_since", cityloop.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("at", cityloop.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("in_grid", sa.Boolean(), nullable=True),
        sa.CheckConstraint(
            "duty IN ('off', 'on', 'leave', 'out_of_grid')", name=op.f("ck_fleet_people_duty")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_fleet_people_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_fleet_people")),
    )
    op.create_table(
        "fleet_road_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("district_code", sa.String(length=12), nullable=True),
        sa.Column("vehicle_id", sa.Integer(), nullable=True),
        sa.Column("coordinates", sa.JSON(), nullable=False),
        sa.Column("length_m", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vehicle_id"],
            ["fleet_vehicles.id"],
            name=op.f("fk_fleet_road_segments_vehicle_id_fleet_vehicles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_road_segments")),
        sa.UniqueConstraint("code", name=op.f("uq_fleet_road_segments_code")),
    )
    with op.batch_alter_table("fleet_road_segments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fleet_road_segments_vehicle_id"), ["vehicle_id"], unique=False
        )

    op.create_table(
        "fleet_roster_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team", sa.String(length=12), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", cityloop.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", cityloop.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("swapped_from_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "status IN ('planned', 'leave')", name=op.f("ck_fleet_roster_shifts_status")
        ),
        sa.CheckConstraint(
            "team IN ('inspector', 'officer', 'hotline', 'sanitation')",
            name=op.f("ck_fleet_roster_shifts_team"),
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_fleet_roster_shifts_order")),
        sa.ForeignKeyConstraint(
            ["swapped_from_id"],
            ["users.id"],
            name=op.f("fk_fleet_roster_shifts_swapped_from_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_fleet_roster_shifts_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fleet_roster_shifts")),
    )
    with op.batch_alter_table("fleet_roster_shifts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_fleet_roster_shifts_team_start", ["team", "starts_at"], unique=False
        )
        batch_op.create_index(
            "ix_fleet_roster_shifts_user_start", ["user_id", "starts_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("fleet_roster_shifts", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_roster_shifts_user_start")
        batch_op.drop_index("ix_fleet_roster_shifts_team_start")

    op.drop_table("fleet_roster_shifts")
    with op.batch_alter_table("fleet_road_segments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fleet_road_segments_vehicle_id"))

    op.drop_table("fleet_road_segments")
    op.drop_table("fleet_people")
    with op.batch_alter_table("fleet_duty_events", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_duty_events_user_at")

    op.drop_table("fleet_duty_events")
    with op.batch_alter_table("fleet_vehicles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fleet_vehicles_department_id"))

    op.drop_table("fleet_vehicles")
    with op.batch_alter_table("fleet_positions", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_positions_at_brin", postgresql_using="brin")

    op.drop_table("fleet_positions")
    with op.batch_alter_table("fleet_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_fleet_alerts_subject")
        batch_op.drop_index(batch_op.f("ix_fleet_alerts_raised_at"))

    op.drop_table("fleet_alerts")
