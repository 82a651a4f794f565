"""Tables of the organisation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base, UtcDateTime


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('centre', 'district_office', 'street_office', 'community', "
            "'professional', 'utility', 'enforcement')",
            name="kind",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id"), index=True, default=None
    )
    region_code: Mapped[str | None] = mapped_column(String(20), default=None, index=True)
    phone: Mapped[str | None] = mapped_column(String(30), default=None)
    webhook_url: Mapped[str | None] = mapped_column(String(300), default=None)
    # The key the department's webhook deliveries are signed with (notifications).
    webhook_secret: Mapped[str | None] = mapped_column(String(100), default=None)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('admin', 'operator', 'shiftlead', 'dispatcher', 'inspector', 'handler', "
            "'leader', 'officer', 'legal_reviewer', 'enforcement_chief')",
            name="role",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(60))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id"), index=True, default=None
    )
    # Region codes (responsibility grids, communities, streets) an inspector patrols.
    grid_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    phone: Mapped[str | None] = mapped_column(String(30), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Tokens and console sessions carry the generation they were made in (org.service).
    token_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ResponsibilityRule(Base):
    """Who handles a class of problem in a place: the longest matching prefixes win."""

    __tablename__ = "responsibility_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_prefix: Mapped[str] = mapped_column(String(8), default="")
    region_prefix: Mapped[str] = mapped_column(String(20), default="")
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    # Ownership so clear that trusted reports (inspectors, devices) go straight to the
    # department without waiting at the desks (直接派遣, R-DIS-1).
    auto_dispatch: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    note: Mapped[str] = mapped_column(String(200), default="")


class LoginThrottle(Base):
    """Failed logins of one account or one client address (org.throttle). Kept in the database
    so that every server process counts the same failures."""

    __tablename__ = "login_throttles"
    __table_args__ = (CheckConstraint("kind IN ('account', 'address', 'uploads')", name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    # sha256 of the kind and the lower-cased username or the address: a password typed into
    # the username field is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The account's user when the name exists (the administrator's list of locked accounts).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True, default=None)
    window_started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    window_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Failures in a row since the last success or lock, whatever the window.
    streak: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_failure_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
