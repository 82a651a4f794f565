"""Services of the field force: vehicles, fixes (checked, deduplicated, stored in batches),
duty and the out-of-grid alert, stale terminals, rosters, road segments and coverage, patrol
figures. Services only flush; the caller owns the transaction."""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from cityloop.errors import Conflict, NotFound, ValidationFailed
from cityloop.fleet.jt808 import canonical_phone
from cityloop.fleet.models import (
    DUTY_STATES,
    VEHICLE_KINDS,
    DutyEvent,
    FleetAlert,
    Person,
    Position,
    RoadSegment,
    RosterShift,
    Vehicle,
)
from cityloop.kit.geo import haversine_m
from cityloop.org.models import User

log = logging.getLogger(__name__)
_VEHICLES = cast(Table, Vehicle.__table__)
_POSITIONS = cast(Table, Position.__table__)

# Bad input (issue 16): a fix further ahead than this is refused as "in the future", one older
# than MAX_AGE as "far past"; a speed above MAX_SPEED_KMH (read or implied by two fixes) is
# kept but flagged and never drawn.
MAX_AHEAD = timedelta(minutes=5)
MAX_AGE = timedelta(days=30)
MAX_SPEED_KMH = 160.0
# A terminal silent this long is stale (JT/T 808 terminals report every 10-60 s while moving
# and send heartbeats otherwise).
STALE_AFTER = timedelta(minutes=5)
PERSON_STALE_AFTER = timedelta(minutes=30)
# Sweeping speed: a sweeper passing a segment faster than this is driving, not cleaning.
WORKING_SPEED_KMH = (0.5, 20.0)
SEGMENT_NEAR_M = 25.0
SEGMENT_COVERED_SHARE = 0.7
STAFF_TEAMS = ("inspector", "officer", "hotline", "sanitation")


@dataclass(frozen=True)
class Fix:
    subject: str  # vehicle | person
    subject_id: int
    at: datetime
    lon: float
    lat: float
    source: str
    speed_kmh: float | None = None
    heading: int | None = None
    positioned: bool = True


# -- vehicles -----------------------------------------------------------------------------------
def register_vehicle(
    session: Session,
    *,
    plate: str,
    kind: str,
    terminal_phone: str,
    department_id: int | None = None,
) -> Vehicle:
    if kind not in VEHICLE_KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(VEHICLE_KINDS)}", field="kind")
    digits = terminal_phone.strip()
    if not digits.isdigit() or not 1 <= len(digits) <= 20:
        raise ValidationFailed("terminal_phone is up to 20 decimal digits", field="terminal_phone")
    phone = canonical_phone(digits)
    if session.scalar(select(Vehicle.id).where(Vehicle.terminal_phone == phone)) is not None:
        raise Conflict(f"terminal {phone} is already on a vehicle", field="terminal_phone")
    if session.scalar(select(Vehicle.id).where(Vehicle.plate == plate)) is not None:
        raise Conflict(f"plate {plate} is already registered", field="plate")
    vehicle = Vehicle(
        plate=plate, kind=kind, terminal_phone=phone, department_id=department_id, state="never"
    )
    session.add(vehicle)
    session.flush()
    return vehicle


def vehicle_by_phone(session: Session, phone: str) -> Vehicle | None:
    return session.scalar(select(Vehicle).where(Vehicle.terminal_phone == canonical_phone(phone)))


def register_terminal(session: Session, phone: str, now: datetime) -> tuple[int, str | None]:
    """0x0100: the vehicle registered for this terminal number gets (or keeps) an auth code.
    Returns (0x8100 result, auth code); a number the platform does not know is refused with
    result 4 (no such terminal in the database)."""
    from cityloop.fleet import jt808

    vehicle = vehicle_by_phone(session, phone)
    if vehicle is None:
        return jt808.REG_NO_TERMINAL, None
    if vehicle.auth_code is None:
        vehicle.auth_code = secrets.token_urlsafe(12)
        vehicle.registered_at = now
    session.flush()
    return jt808.REG_OK, vehicle.auth_code


def authenticate_terminal(session: Session, phone: str, code: str) -> int | None:
    """0x0102: the vehicle's id when the code is the one it was given, else None."""
    vehicle = vehicle_by_phone(session, phone)
    if vehicle is None or vehicle.auth_code is None:
        return None
    return vehicle.id if secrets.compare_digest(vehicle.auth_code, code) else None


def logout_terminal(session: Session, vehicle_id: int) -> None:
    """0x0003: the terminal leaves its vehicle; it must register again."""
    session.execute(update(Vehicle).where(Vehicle.id == vehicle_id).values(auth_code=None))


def vehicles(session: Session) -> list[Vehicle]:
    return list(session.scalars(select(Vehicle).order_by(Vehicle.id)))


def require_vehicle(session: Session, vehicle_id: int) -> Vehicle:
    vehicle = session.get(Vehicle, vehicle_id)
    if vehicle is None:
        raise NotFound(f"no vehicle {vehicle_id}", field="vehicle_id")
    return vehicle


def touch_vehicles(session: Session, seen: dict[int, datetime]) -> None:
    """Heartbeats and messages: the terminal is alive (state back to online). One statement
    executed for many rows: a batch of 1,000 terminals is one round of the driver, not 1,000."""
    if not seen:
        return
    table = _VEHICLES
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("vid"))
        .values(last_seen_at=bindparam("seen"), state="online"),
        [{"vid": vehicle_id, "seen": at} for vehicle_id, at in seen.items()],
    )


# -- fixes --------------------------------------------------------------------------------------
def _refusal(fix: Fix, now: datetime) -> str | None:
    if not (
        isinstance(fix.lon, int | float)
        and isinstance(fix.lat, int | float)
        and math.isfinite(fix.lon)
        and math.isfinite(fix.lat)
        and -180 <= fix.lon <= 180
        and -90 <= fix.lat <= 90
    ):
        return "impossible coordinates"
    if fix.lon == 0 and fix.lat == 0:
        return "impossible coordinates"  # a terminal without a fix reports 0, 0
    if fix.at.tzinfo is None:
        return "a time without its offset"
    if fix.at > now + MAX_AHEAD:
        return "a time in the future"
    if fix.at < now - MAX_AGE:
        return "a time too far in the past"
    return None


@dataclass
class Stored:
    stored: int = 0
    refused: int = 0
    flagged: int = 0
    reasons: dict[str, int] | None = None


def _latest_of(session: Session, subject: str, ids: set[int]) -> dict[int, tuple[Any, ...]]:
    if not ids:
        return {}
    if subject == "vehicle":
        rows = session.execute(
            select(Vehicle.id, Vehicle.at, Vehicle.lon, Vehicle.lat).where(Vehicle.id.in_(ids))
        )
    else:
        rows = session.execute(
            select(Person.user_id, Person.at, Person.lon, Person.lat).where(Person.user_id.in_(ids))
        )
    return {row[0]: tuple(row[1:]) for row in rows if row[1] is not None}


def store_fixes(
    session: Session, fixes: Sequence[Fix], now: datetime, places: Any = None
) -> Stored:
    """Check, flag and store fixes in one batch; a fix already stored (same subject, same
    time) is not stored again, so a resent batch changes nothing. The latest good fix of each
    subject is kept on its row for the map."""
    result = Stored(reasons={})
    assert result.reasons is not None
    good: list[Fix] = []
    for fix in fixes:
        reason = _refusal(fix, now)
        if reason is not None:
            result.refused += 1
            result.reasons[reason] = result.reasons.get(reason, 0) + 1
            continue
        good.append(fix)
    if not good:
        return result
    good.sort(key=lambda f: (f.subject, f.subject_id, f.at))
    previous: dict[tuple[str, int], tuple[Any, ...]] = {}
    for subject in ("vehicle", "person"):
        ids = {f.subject_id for f in good if f.subject == subject}
        for subject_id, value in _latest_of(session, subject, ids).items():
            previous[(subject, subject_id)] = value
    rows: list[dict[str, Any]] = []
    newest: dict[tuple[str, int], Fix] = {}
    for fix in good:
        key = (fix.subject, fix.subject_id)
        flag = None
        if not fix.positioned:
            flag = "no_fix"
        elif fix.speed_kmh is not None and fix.speed_kmh > MAX_SPEED_KMH:
            flag = "speed"
        else:
            before = previous.get(key)
            if before is not None and before[0] is not None and before[0] < fix.at:
                hours = (fix.at - before[0]).total_seconds() / 3600
                metres = haversine_m(before[1], before[2], fix.lon, fix.lat)
                if metres > 200 and metres / 1000 / hours > MAX_SPEED_KMH:
                    flag = "jump"
        if flag is None:
            previous[key] = (fix.at, fix.lon, fix.lat)
            latest = newest.get(key)
            if latest is None or latest.at < fix.at:
                newest[key] = fix
        else:
            result.flagged += 1
        rows.append(
            {
                "subject": fix.subject,
                "subject_id": fix.subject_id,
                "at": fix.at,
                "lon": float(fix.lon),
                "lat": float(fix.lat),
                "speed_kmh": fix.speed_kmh,
                "heading": fix.heading,
                "source": fix.source,
                "flag": flag,
            }
        )
    if session.get_bind().dialect.name == "postgresql":
        stored = _insert_pg(session, rows)
    else:
        statement = (
            sqlite.insert(_POSITIONS)
            .on_conflict_do_nothing(index_elements=["subject", "subject_id", "at"])
            .returning(_POSITIONS.c.id)
        )
        # RETURNING names the rows inserted (a duplicate returns none).
        stored = len(session.connection().execute(statement, rows).all())
    result.stored = stored
    moved = [f for f in newest.values() if f.subject == "vehicle"]
    if moved:
        table = _VEHICLES
        session.connection().execute(
            update(table)
            .where(
                table.c.id == bindparam("vid"),
                or_(table.c.at.is_(None), table.c.at < bindparam("fat")),
            )
            .values(
                lon=bindparam("flon"),
                lat=bindparam("flat"),
                at=bindparam("fat"),
                speed_kmh=bindparam("fspeed"),
                last_seen_at=now,
                state="online",
            ),
            [
                {
                    "vid": f.subject_id,
                    "flon": f.lon,
                    "flat": f.lat,
                    "fat": f.at,
                    "fspeed": f.speed_kmh,
                }
                for f in moved
            ],
        )
    for fix in newest.values():
        if fix.subject == "person":
            _keep_latest_person(session, fix, now, places)
    session.flush()
    return result


_PG_INSERT = text(
    "INSERT INTO fleet_positions "
    "(subject, subject_id, at, lon, lat, speed_kmh, heading, source, flag) "
    "SELECT * FROM unnest(CAST(:subject AS varchar[]), CAST(:subject_id AS integer[]), "
    "CAST(:at AS timestamptz[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]), "
    "CAST(:speed_kmh AS float8[]), CAST(:heading AS smallint[]), CAST(:source AS varchar[]), "
    "CAST(:flag AS varchar[])) "
    "ON CONFLICT (subject, subject_id, at) DO NOTHING RETURNING id"
)
_COLUMNS = ("subject", "subject_id", "at", "lon", "lat", "speed_kmh", "heading", "source", "flag")


def _insert_pg(session: Session, rows: list[dict[str, Any]]) -> int:
    """One statement for the whole batch, its columns sent as arrays: the driver neither
    parses a statement of thousands of placeholders nor runs one INSERT per row."""
    params = {name: [row[name] for row in rows] for name in _COLUMNS}
    return len(session.execute(_PG_INSERT, params).all())


def _keep_latest_person(session: Session, fix: Fix, now: datetime, places: Any) -> None:
    person = session.get(Person, fix.subject_id)
    if person is None:
        person = Person(user_id=fix.subject_id, duty="off")
        session.add(person)
    if person.at is not None and person.at >= fix.at:
        return
    person.lon, person.lat, person.at = fix.lon, fix.lat, fix.at
    if places is not None:
        user = session.get(User, fix.subject_id)
        inside = in_grids(places, user, fix.lon, fix.lat) if user is not None else None
        person.in_grid = inside
        _watch_grid(session, person, now)


# -- duty and the out-of-grid alert ------------------------------------------------------------
def in_grids(places: Any, user: User, lon: float, lat: float) -> bool | None:
    """Whether the point lies in one of the user's grids (User.grid_codes are region-code
    prefixes); None for a user without grids."""
    grids = [str(c) for c in (user.grid_codes or []) if c]
    if not grids:
        return None
    where = places.locate(lon, lat)
    if where is None:
        return False
    codes = [
        c
        for c in (where.unit_grid, where.resp_grid, where.community, where.street, where.district)
        if c
    ]
    return any(code.startswith(grid) for code in codes for grid in grids)


def set_duty(
    session: Session, user: User, status: str, reason: str | None, now: datetime
) -> Person:
    if status not in DUTY_STATES:
        raise ValidationFailed(f"status must be one of {', '.join(DUTY_STATES)}", field="status")
    reason = (reason or "").strip() or None
    if status in ("out_of_grid", "leave") and reason is None:
        raise ValidationFailed(f"{status} needs a reason", field="reason")
    if reason is not None and len(reason) > 200:
        raise ValidationFailed("reason is at most 200 characters", field="reason")
    person = session.get(Person, user.id, with_for_update=True)
    if person is None:
        person = Person(user_id=user.id, duty="off")
        session.add(person)
    if status == "out_of_grid" and person.duty not in ("on", "out_of_grid"):
        raise Conflict("出格报备 is made while on duty (上岗 first)", field="status")
    if status == person.duty and status != "out_of_grid":
        raise Conflict(f"already {status}", field="status")
    person.duty, person.duty_since, person.reason = status, now, reason
    session.add(DutyEvent(user_id=user.id, status=status, reason=reason, at=now))
    if status != "on":
        _clear_alerts(session, "person", user.id, "out_of_grid", now)
    elif person.in_grid is False:
        _watch_grid(session, person, now)
    session.flush()
    return person


def _watch_grid(session: Session, person: Person, now: datetime) -> None:
    if person.duty == "on" and person.in_grid is False:
        if _open_alert(session, "person", person.user_id, "out_of_grid") is None:
            user = session.get(User, person.user_id)
            name = user.display_name if user is not None else str(person.user_id)
            alert = FleetAlert(
                kind="out_of_grid",
                subject="person",
                subject_id=person.user_id,
                message=f"{name} 上岗期间离开责任网格，未出格报备",
                lon=person.lon,
                lat=person.lat,
                raised_at=now,
            )
            session.add(alert)
            session.flush()
            publish_alert(session, alert)
    elif person.in_grid:
        _clear_alerts(session, "person", person.user_id, "out_of_grid", now)


def _open_alert(session: Session, subject: str, subject_id: int, kind: str) -> FleetAlert | None:
    return session.scalar(
        select(FleetAlert).where(
            FleetAlert.subject == subject,
            FleetAlert.subject_id == subject_id,
            FleetAlert.kind == kind,
            FleetAlert.cleared_at.is_(None),
        )
    )


def _clear_alerts(
    session: Session, subject: str, subject_id: int, kind: str, now: datetime
) -> None:
    session.execute(
        update(FleetAlert)
        .where(
            FleetAlert.subject == subject,
            FleetAlert.subject_id == subject_id,
            FleetAlert.kind == kind,
            FleetAlert.cleared_at.is_(None),
        )
        .values(cleared_at=now)
    )


def publish_alert(session: Session, alert: FleetAlert) -> None:
    """The one place a field-force alert leaves for the shift leader's channels. The alert is
    already a row (shown on the big screen and by GET /api/v1/fleet/alerts); the notifications
    package (branch `notifications`) is to be called here when it is merged."""
    log.info("fleet alert %s %s %s: %s", alert.kind, alert.subject, alert.subject_id, alert.message)


def open_alerts(session: Session) -> list[FleetAlert]:
    return list(
        session.scalars(
            select(FleetAlert)
            .where(FleetAlert.cleared_at.is_(None))
            .order_by(FleetAlert.raised_at.desc())
            .limit(500)
        )
    )


def mark_stale(session: Session, now: datetime, after: timedelta = STALE_AFTER) -> list[int]:
    """Vehicles whose terminal has been silent longer than `after`: state stale, one alert."""
    ids = list(
        session.scalars(
            select(Vehicle.id).where(Vehicle.state == "online", Vehicle.last_seen_at < now - after)
        )
    )
    for vehicle_id in ids:
        vehicle = session.get(Vehicle, vehicle_id)
        assert vehicle is not None
        vehicle.state = "stale"
        if _open_alert(session, "vehicle", vehicle_id, "stale") is None:
            alert = FleetAlert(
                kind="stale",
                subject="vehicle",
                subject_id=vehicle_id,
                message=f"{vehicle.plate} 终端已 {int(after.total_seconds() // 60)} 分钟无数据",
                lon=vehicle.lon,
                lat=vehicle.lat,
                raised_at=now,
            )
            session.add(alert)
            session.flush()
            publish_alert(session, alert)
    # Terminals that came back clear their stale alert.
    back = session.scalars(
        select(FleetAlert.id)
        .join(Vehicle, and_(FleetAlert.subject == "vehicle", FleetAlert.subject_id == Vehicle.id))
        .where(
            FleetAlert.kind == "stale", FleetAlert.cleared_at.is_(None), Vehicle.state == "online"
        )
    ).all()
    if back:
        session.execute(update(FleetAlert).where(FleetAlert.id.in_(back)).values(cleared_at=now))
    session.flush()
    return ids


def people_positions(session: Session, now: datetime) -> list[dict[str, Any]]:
    rows = session.execute(
        select(User, Person).join(Person, Person.user_id == User.id).where(Person.at.is_not(None))
    ).all()
    return [
        {
            "user_id": user.id,
            "name": user.display_name,
            "role": user.role,
            "duty": person.duty,
            "lon": person.lon,
            "lat": person.lat,
            "at": person.at,
            "in_grid": person.in_grid,
            "stale": person.at is None or now - person.at > PERSON_STALE_AFTER,
        }
        for user, person in rows
    ]


def track(
    session: Session, subject: str, subject_id: int, since: datetime, until: datetime
) -> list[Any]:
    """The unit's good fixes in [since, until) in time order, as rows (at, lon, lat,
    speed_kmh, heading): plain rows, not ORM objects, so that a year of one unit (half a
    million fixes) is read in a second or two, not in the ten that building objects takes."""
    if until <= since:
        raise ValidationFailed("to must be after from", field="to")
    if until - since > timedelta(days=366):
        raise ValidationFailed("a track covers at most a year", field="to")
    return list(
        session.execute(
            select(Position.at, Position.lon, Position.lat, Position.speed_kmh, Position.heading)
            .where(
                Position.subject == subject,
                Position.subject_id == subject_id,
                Position.at >= since,
                Position.at < until,
                Position.flag.is_(None),
            )
            .order_by(Position.at)
        ).all()
    )


# -- patrol figures -----------------------------------------------------------------------------
def track_distance_m(points: Iterable[Any]) -> float:
    total = 0.0
    last: Any = None
    for point in points:
        if last is not None:
            total += haversine_m(last.lon, last.lat, point.lon, point.lat)
        last = point
    return total


def duty_minutes(session: Session, user_id: int, since: datetime, until: datetime) -> float:
    """Minutes on duty (上岗 or 出格报备) in [since, until), from the duty events."""
    events = list(
        session.scalars(
            select(DutyEvent)
            .where(DutyEvent.user_id == user_id, DutyEvent.at < until)
            .order_by(DutyEvent.at)
        )
    )
    minutes = 0.0
    on_since: datetime | None = None
    for event in events:
        at = max(event.at, since)
        on = event.status in ("on", "out_of_grid")
        if on and on_since is None:
            on_since = at
        elif not on and on_since is not None:
            minutes += max(0.0, (at - on_since).total_seconds() / 60)
            on_since = None
    if on_since is not None:
        minutes += max(0.0, (until - on_since).total_seconds() / 60)
    return minutes


def patrol_figures(
    session: Session, places: Any, user: User, since: datetime, until: datetime
) -> dict[str, Any]:
    points = track(session, "person", user.id, since, until)
    grids = [str(c) for c in (user.grid_codes or []) if c]
    visited: set[str] = set()
    if places is not None and points:
        for where in places.locate_many([p.lon for p in points], [p.lat for p in points]):
            if where is not None and where.unit_grid:
                visited.add(where.unit_grid)
    assigned = _unit_grids_under(session, grids)
    share = len(visited & assigned) / len(assigned) if assigned else None
    return {
        "user_id": user.id,
        "name": user.display_name,
        "distance_km": round(track_distance_m(points) / 1000, 2),
        "duty_minutes": round(duty_minutes(session, user.id, since, until), 1),
        "fixes": len(points),
        "grids_assigned": len(assigned),
        "grids_visited": len(visited & assigned),
        "grid_share": None if share is None else round(share, 3),
    }


def _unit_grids_under(session: Session, prefixes: list[str]) -> set[str]:
    from cityloop.places.models import UnitGrid

    if not prefixes:
        return set()
    return set(
        session.scalars(
            select(UnitGrid.code).where(or_(*(UnitGrid.code.startswith(p) for p in prefixes)))
        )
    )


# -- rosters ------------------------------------------------------------------------------------
def add_shift(
    session: Session,
    *,
    team: str,
    user_id: int,
    starts_at: datetime,
    ends_at: datetime,
    note: str | None = None,
) -> RosterShift:
    if team not in STAFF_TEAMS:
        raise ValidationFailed(f"team must be one of {', '.join(STAFF_TEAMS)}", field="team")
    if ends_at <= starts_at:
        raise ValidationFailed("ends_at must be after starts_at", field="ends_at")
    if ends_at - starts_at > timedelta(hours=24):
        raise ValidationFailed("a shift lasts at most 24 hours", field="ends_at")
    if session.get(User, user_id) is None:
        raise NotFound(f"no user {user_id}", field="user_id")
    overlap = session.scalar(
        select(RosterShift.id).where(
            RosterShift.user_id == user_id,
            RosterShift.starts_at < ends_at,
            RosterShift.ends_at > starts_at,
        )
    )
    if overlap is not None:
        raise Conflict(f"user {user_id} already has shift {overlap} then", field="starts_at")
    shift = RosterShift(team=team, user_id=user_id, starts_at=starts_at, ends_at=ends_at, note=note)
    session.add(shift)
    session.flush()
    return shift


def _shift(session: Session, shift_id: int) -> RosterShift:
    shift = session.get(RosterShift, shift_id, with_for_update=True)
    if shift is None:
        raise NotFound(f"no shift {shift_id}", field="shift_id")
    return shift


def swap_shift(session: Session, shift_id: int, to_user_id: int) -> RosterShift:
    """换班: another person takes the shift; they must be free then."""
    shift = _shift(session, shift_id)
    if session.get(User, to_user_id) is None:
        raise NotFound(f"no user {to_user_id}", field="user_id")
    busy = session.scalar(
        select(RosterShift.id).where(
            RosterShift.user_id == to_user_id,
            RosterShift.id != shift.id,
            RosterShift.starts_at < shift.ends_at,
            RosterShift.ends_at > shift.starts_at,
        )
    )
    if busy is not None:
        raise Conflict(f"user {to_user_id} has shift {busy} then", field="user_id")
    shift.swapped_from_id, shift.user_id = shift.user_id, to_user_id
    session.flush()
    return shift


def leave_shift(session: Session, shift_id: int, reason: str) -> RosterShift:
    if not reason.strip():
        raise ValidationFailed("leave needs a reason", field="reason")
    shift = _shift(session, shift_id)
    shift.status, shift.note = "leave", reason.strip()[:200]
    session.flush()
    return shift


def on_shift(session: Session, team: str, at: datetime) -> list[tuple[RosterShift, User]]:
    """Who is on the team's shift at `at` (leave excluded)."""
    return [
        (shift, user)
        for shift, user in session.execute(
            select(RosterShift, User)
            .join(User, User.id == RosterShift.user_id)
            .where(
                RosterShift.team == team,
                RosterShift.status == "planned",
                RosterShift.starts_at <= at,
                RosterShift.ends_at > at,
            )
            .order_by(RosterShift.starts_at, User.id)
        ).all()
    ]


def shifts(
    session: Session, team: str | None, since: datetime, until: datetime
) -> list[RosterShift]:
    query = select(RosterShift).where(RosterShift.starts_at < until, RosterShift.ends_at > since)
    if team is not None:
        query = query.where(RosterShift.team == team)
    return list(session.scalars(query.order_by(RosterShift.starts_at, RosterShift.id)))


# -- road segments and sweeper coverage --------------------------------------------------------
def _line_length_m(coords: list[list[float]]) -> float:
    return sum(haversine_m(a[0], a[1], b[0], b[1]) for a, b in pairwise(coords))


def import_segments(
    session: Session, geojson: dict[str, Any], vehicle_ids: dict[str, int] | None = None
) -> list[RoadSegment]:
    """A FeatureCollection of LineStrings (WGS-84): properties code, name, district_code and
    optionally plate (the sweeper assigned). A code already present is updated."""
    if geojson.get("type") != "FeatureCollection" or not isinstance(geojson.get("features"), list):
        raise ValidationFailed("a GeoJSON FeatureCollection is expected", field="type")
    out = []
    plates = vehicle_ids or {p: i for p, i in session.execute(select(Vehicle.plate, Vehicle.id))}
    for index, feature in enumerate(geojson["features"]):
        item: dict[str, Any] = feature if isinstance(feature, dict) else {}
        raw_geometry, raw_props = item.get("geometry"), item.get("properties")
        geometry: dict[str, Any] = raw_geometry if isinstance(raw_geometry, dict) else {}
        props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
        coords = geometry.get("coordinates")
        if geometry.get("type") != "LineString" or not isinstance(coords, list) or len(coords) < 2:
            raise ValidationFailed(
                f"features[{index}] must be a LineString of two points at least",
                field=f"features.{index}.geometry",
            )
        try:
            line = [[float(c[0]), float(c[1])] for c in coords]
        except (TypeError, ValueError, IndexError) as exc:
            raise ValidationFailed(
                f"features[{index}]: coordinates are [lon, lat] numbers",
                field=f"features.{index}.geometry",
            ) from exc
        if not all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in line):
            raise ValidationFailed(
                f"features[{index}]: impossible coordinates", field=f"features.{index}.geometry"
            )
        code = str(props.get("code") or "").strip()
        if not code:
            raise ValidationFailed(
                f"features[{index}] needs properties.code", field=f"features.{index}.code"
            )
        plate = props.get("plate")
        vehicle_id = plates.get(str(plate)) if plate else None
        if plate and vehicle_id is None:
            raise ValidationFailed(
                f"features[{index}]: no vehicle {plate}", field=f"features.{index}.plate"
            )
        segment = session.scalar(select(RoadSegment).where(RoadSegment.code == code))
        if segment is None:
            segment = RoadSegment(code=code)
            session.add(segment)
        segment.name = str(props.get("name") or code)[:80]
        district = props.get("district_code")
        segment.district_code = str(district)[:12] if district is not None else None
        segment.vehicle_id = vehicle_id
        segment.coordinates = line
        segment.length_m = _line_length_m(line)
        out.append(segment)
    session.flush()
    return out


def _covered_share(line: list[list[float]], points: list[tuple[float, float]]) -> float:
    """Share of the line's 10-metre pieces that have a working-speed fix within
    SEGMENT_NEAR_M (local planar metres: a segment spans a few hundred metres)."""
    lat0 = line[0][1]
    kx = 111_320 * math.cos(math.radians(lat0))
    ky = 110_540.0
    xy = [((x - line[0][0]) * kx, (y - line[0][1]) * ky) for x, y in line]
    pts = [((x - line[0][0]) * kx, (y - line[0][1]) * ky) for x, y in points]
    pieces = 0
    covered = 0
    for (ax, ay), (bx, by) in pairwise(xy):
        length = math.hypot(bx - ax, by - ay)
        steps = max(1, int(length // 10))
        for step in range(steps):
            t = (step + 0.5) / steps
            cx, cy = ax + (bx - ax) * t, ay + (by - ay) * t
            pieces += 1
            if any(
                math.hypot(px - cx, py - cy) <= max(SEGMENT_NEAR_M, 5 + length / steps / 2)
                for px, py in pts
            ):
                covered += 1
    return covered / pieces if pieces else 0.0


def coverage(session: Session, vehicle_id: int, since: datetime, until: datetime) -> dict[str, Any]:
    """A sweeper's work coverage: which of its segments it passed at working speed."""
    vehicle = require_vehicle(session, vehicle_id)
    segments = list(
        session.scalars(
            select(RoadSegment)
            .where(RoadSegment.vehicle_id == vehicle_id)
            .order_by(RoadSegment.code)
        )
    )
    low, high = WORKING_SPEED_KMH
    working = [
        (p.lon, p.lat)
        for p in track(session, "vehicle", vehicle_id, since, until)
        if p.speed_kmh is not None and low <= p.speed_kmh <= high
    ]
    done: list[dict[str, Any]] = []
    missed: list[dict[str, Any]] = []
    for segment in segments:
        share = _covered_share(segment.coordinates, working)
        entry = {
            "id": segment.id,
            "code": segment.code,
            "name": segment.name,
            "share": round(share, 3),
        }
        (done if share >= SEGMENT_COVERED_SHARE else missed).append(entry)
    return {
        "vehicle_id": vehicle.id,
        "plate": vehicle.plate,
        "segments": len(segments),
        "covered": done,
        "missed": missed,
        "rate": round(len(done) / len(segments), 3) if segments else None,
    }


def duty_of(session: Session, user_id: int) -> str:
    person = session.get(Person, user_id)
    return person.duty if person is not None else "off"
