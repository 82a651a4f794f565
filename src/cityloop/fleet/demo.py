"""The demo city's field force: sanitation (环卫) and enforcement (执法) vehicles with terminal
numbers, road segments in 思明区 and 湖里区 assigned to the sweepers, and (for a lived-in
city) a month of rosters for the hotline desk and the inspectors.

Road geometry here is illustrative (示意): each segment is a straight 400 m line from a demo
community's sample point, named after a real road of its district, not a survey."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.fleet import service
from cityloop.org.models import Department, User
from cityloop.places.demo_xiamen import sample_point
from cityloop.places.models import Region
from cityloop.places.service import PlaceIndex

TZ = ZoneInfo("Asia/Shanghai")

# (plate, kind, unit code, terminal number: 12 digits as a 2013 terminal sends it)
VEHICLES = (
    ("闽D·HW001", "sweeper", "XM-HW", "013592000001"),
    ("闽D·HW002", "sweeper", "XM-HW", "013592000002"),
    ("闽D·HW003", "sweeper", "XM-HW", "013592000003"),
    ("闽D·HW004", "sweeper", "XM-HW", "013592000004"),
    ("闽D·HW011", "sprinkler", "XM-HW", "013592000011"),
    ("闽D·HW012", "sprinkler", "XM-HW", "013592000012"),
    ("闽D·HW021", "refuse", "XM-HW", "013592000021"),
    ("闽D·HW022", "refuse", "XM-HW", "013592000022"),
    ("闽D·ZF001", "enforcement", "XM-ZF", "013593000001"),
    ("闽D·ZF002", "enforcement", "XM-ZF", "013593000002"),
    ("闽D·ZF003", "enforcement", "XM-ZF", "013593000003"),
    ("闽D·ZF004", "patrol", "XM-ZF", "013593000004"),
)
# District → real road names used for the illustrative segments.
ROADS = {
    "350203": ("湖滨南路", "莲前西路", "厦禾路", "嘉禾路（思明段）", "湖滨东路", "禾祥西路"),
    "350206": ("仙岳路", "江头北路", "吕岭路", "台湾街", "嘉禾路（湖里段）", "湖里大道"),
}
SEGMENT_M = 400.0


def build(
    session: Session, *, places: PlaceIndex, now: datetime, rosters: bool = True
) -> dict[str, int]:
    units = {d.code: d.id for d in session.scalars(select(Department))}
    vehicles = [
        service.register_vehicle(
            session, plate=plate, kind=kind, terminal_phone=phone, department_id=units.get(unit)
        )
        for plate, kind, unit, phone in VEHICLES
    ]
    sweepers = [v for v in vehicles if v.kind == "sweeper"]
    features = []
    for d_index, (district, names) in enumerate(ROADS.items()):
        communities = list(
            session.scalars(
                select(Region.code)
                .where(Region.code.like(district + "______"), Region.level == "community")
                .order_by(Region.code)
                .limit(len(names) * 7)
            )
        )[::7][: len(names)]
        for index, (name, community) in enumerate(zip(names, communities, strict=False)):
            lon, lat = sample_point(places, community)
            dlon = SEGMENT_M / 1000 / 101.3  # ~101 km a degree of longitude at 24.5°N
            features.append(
                {
                    "type": "Feature",
                    "geometry": {
                        "type": "LineString",
                        "coordinates": [[lon, lat], [lon + dlon / 2, lat], [lon + dlon, lat]],
                    },
                    "properties": {
                        "code": f"RD-{district}-{index + 1:02d}",
                        "name": f"{name}（示意）",
                        "district_code": district,
                        "plate": sweepers[(d_index * 2 + index) % len(sweepers)].plate,
                    },
                }
            )
    segments = service.import_segments(session, {"type": "FeatureCollection", "features": features})
    shifts = _rosters(session, now) if rosters else 0
    return {"vehicles": len(vehicles), "road_segments": len(segments), "roster_shifts": shifts}


def _rosters(session: Session, now: datetime) -> int:
    """A month from today: the hotline desk in three 8-hour shifts around the clock (the
    operator, the shift leader and the dispatcher rotate daily), inspectors 08:30–17:30."""
    users = {u.username: u for u in session.scalars(select(User))}
    desk = [users[n] for n in ("operator", "shiftlead", "dispatcher") if n in users]
    field = [users[n] for n in ("inspector", "inspector_huli") if n in users]
    start = now.astimezone(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    count = 0
    for day in range(30):
        midnight = start + timedelta(days=day)
        for slot in range(3):
            if not desk:
                break
            person = desk[(day + slot) % len(desk)]
            begins = midnight + timedelta(hours=8 * slot)
            service.add_shift(
                session,
                team="hotline",
                user_id=person.id,
                starts_at=begins.astimezone(UTC),
                ends_at=(begins + timedelta(hours=8)).astimezone(UTC),
            )
            count += 1
        for person in field:
            service.add_shift(
                session,
                team="inspector",
                user_id=person.id,
                starts_at=(midnight + timedelta(hours=8, minutes=30)).astimezone(UTC),
                ends_at=(midnight + timedelta(hours=17, minutes=30)).astimezone(UTC),
            )
            count += 1
    return count
