"""Build the demo city into an empty database. Every case is driven through
`intake.receive()` and `cases.service.transition()`, so the demo timelines are real ones."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from cityloop.assets.models import Component
from cityloop.cases.models import Case
from cityloop.cases.service import Actor, transition
from cityloop.cases.states import BY_ACTION
from cityloop.config import get_settings
from cityloop.enforcement import demo as enforcement_demo
from cityloop.fleet import demo as fleet_demo
from cityloop.geocoding.service import import_points
from cityloop.intake.service import Report, receive
from cityloop.iot import demo as iot_demo
from cityloop.kit.calendar import WorkingCalendar
from cityloop.media.service import store_photo
from cityloop.org.models import Department, ResponsibilityRule, User
from cityloop.org.service import hash_password
from cityloop.partners import demo as partners_demo
from cityloop.places import demo_xiamen
from cityloop.places.models import Region, UnitGrid
from cityloop.places.service import PlaceIndex
from cityloop.supervision.sweep import sweep
from cityloop.taxonomy.models import ProblemClass
from cityloop.taxonomy.service import seed_defaults, working_calendar

DEMO_PASSWORD = "cityloop-demo"
CITY_CODE = "350200"
DETAILED_DISTRICTS = ("350203", "350206")  # 思明区, 湖里区: streets' and communities' offices

Progress = Callable[[str, int, int], None]

# (code, name, kind) of the city's professional units and utilities.
PROFESSIONAL_UNITS = (
    ("XM-SZ", "厦门市市政设施管理中心", "professional"),
    ("XM-HW", "厦门市环境卫生中心", "professional"),
    ("XM-YL", "厦门市园林绿化中心", "professional"),
    ("XM-SW", "厦门水务集团有限公司", "utility"),
    ("XM-GD", "国网厦门供电公司", "utility"),
    ("XM-RQ", "厦门华润燃气有限公司", "utility"),
    ("XM-TX", "中国电信厦门分公司", "utility"),
    ("XM-JT", "厦门市交通运输局", "professional"),
    ("XM-JJ", "厦门市公安局交通警察支队", "professional"),
    ("XM-ZF", "厦门市城市管理行政执法局", "enforcement"),
)

# class prefix -> unit code: who owns what, city-wide (territorial rules cover the rest).
CLASS_RULES: dict[str, str] = {
    **dict.fromkeys(
        ("01001", "01002", "01018", "01019", "01024", "01025", "01072", "01073", "21002", "21004"),
        "XM-SW",
    ),
    **dict.fromkeys(
        (
            "01003",
            "01004",
            "01006",
            "01026",
            "01037",
            "01038",
            "01039",
            "01060",
            "02006",
            "02007",
            "02008",
            "02009",
            "21001",
            "21003",
        ),
        "XM-SZ",
    ),
    **dict.fromkeys(("01005", "01017", "01028", "01029", "01030", "01047", "01048"), "XM-GD"),
    **dict.fromkeys(("01007", "01008", "01009", "01027", "01031", "01062"), "XM-TX"),
    **dict.fromkeys(("01011", "01021", "01049", "01057", "21005"), "XM-RQ"),
    "02": "XM-JT",
    "02014": "XM-JJ",
    "02015": "XM-JJ",
    **dict.fromkeys(
        ("03001", "03002", "03003", "03004", "03005", "03014", "03015", "03016", "06042"), "XM-HW"
    ),
    "04": "XM-YL",
    "22002": "XM-ZF",
}

# (username, role, display name, department code or None)
DEMO_USERS = (
    ("admin", "admin", "系统管理员", None),
    ("operator", "operator", "受理员 林晓", "XM-CENTRE"),
    ("shiftlead", "shiftlead", "值班长 陈强", "XM-CENTRE"),
    ("dispatcher", "dispatcher", "派遣员 黄敏", "XM-CENTRE"),
    ("inspector", "inspector", "网格员 张伟 (嘉莲街道)", "D-350203011"),
    ("handler", "handler", "思明区城管办 王芳", "D-350203"),
    ("leader", "leader", "分管领导 郑国华", "XM-CENTRE"),
    ("handler_jialian", "handler", "嘉莲街道办 李娜", "D-350203011"),
    ("handler_yingcui", "handler", "盈翠社区 吴静", "D-350203011003"),
    ("handler_wucun", "handler", "梧村街道 城管中队 何军", "D-350203008"),
    ("handler_huli", "handler", "湖里区城管办 刘洋", "D-350206"),
    ("handler_water", "handler", "水务集团 调度 周涛", "XM-SW"),
    ("handler_sanitation", "handler", "环卫中心 调度 孙丽", "XM-HW"),
    ("inspector_huli", "inspector", "网格员 赵磊 (江头街道)", "D-350206004"),
)
INSPECTOR_GRIDS = {"inspector": ["350203011"], "inspector_huli": ["350206004"]}


def is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(Region))


def build(
    session: Session,
    *,
    now: datetime | None = None,
    cases: int = 300,
    progress: Progress | None = None,
    seed: int = 20260827,
    media_dir: Path | None = None,
) -> dict[str, int]:
    """Build everything into an empty database (the caller commits)."""
    now = now or datetime.now(UTC)
    report: dict[str, int] = {}
    report["classes"] = seed_defaults(session)
    report.update(demo_xiamen.build(session, progress=progress))
    departments = _organisation(session)
    report["departments"] = len(departments)
    report["users"] = _users(session, departments)
    report.update(enforcement_demo.build(session, hash_password(DEMO_PASSWORD)))
    report["components"] = _components(session, departments, random.Random(seed))
    session.flush()
    places = PlaceIndex.load(session)
    report["address_points"] = _gazetteer(session, places)
    report.update(partners_demo.build(session))
    calendar = working_calendar(session)
    photos = _demo_photos(session, media_dir or get_settings().media_dir, now) if cases else {}
    report["cases"] = _cases(
        session, places, calendar, now, cases, random.Random(seed), progress, photos
    )
    if cases:
        report["enforcement_cases"] = enforcement_demo.build_cases(
            session, now=now, calendar=calendar
        ) + enforcement_demo.story_1108(session, now=now, calendar=calendar, places=places)
    # Cameras, gauges and manhole covers; with cases, their alarms play through the channels.
    report.update(
        iot_demo.build(
            session,
            now=now,
            places=places,
            media_dir=media_dir or get_settings().media_dir,
            activity=cases > 0,
        )
    )
    # Vehicles with terminals, road segments; with cases (a lived-in city), a month of rosters.
    report.update(fleet_demo.build(session, places=places, now=now, rosters=cases > 0))
    report["swept"] = sweep(session, now=now, calendar=calendar, batch=10_000).examined
    return report


def _organisation(session: Session) -> dict[str, Department]:
    departments: dict[str, Department] = {}

    def add(code: str, name: str, kind: str, parent: str | None, region: str | None) -> None:
        dept = Department(
            code=code,
            name=name,
            kind=kind,
            region_code=region,
            parent_id=departments[parent].id if parent else None,
        )
        session.add(dept)
        session.flush()
        departments[code] = dept

    add("XM-CENTRE", "厦门市智慧城市管理监督指挥中心", "centre", None, CITY_CODE)
    for code, name, kind in PROFESSIONAL_UNITS:
        add(code, name, kind, "XM-CENTRE", CITY_CODE)
    regions = session.execute(
        select(Region.code, Region.name, Region.level)
        .where(Region.level.in_(("district", "street", "community")))
        .order_by(Region.code)
    ).all()
    for code, name, level in regions:
        if level == "district":
            add(f"D-{code}", f"{name}城市管理办公室", "district_office", "XM-CENTRE", code)
        elif level == "street" and code[:6] in DETAILED_DISTRICTS:
            add(f"D-{code}", f"{name}办事处", "street_office", f"D-{code[:6]}", code)
        elif level == "community" and code[:6] in DETAILED_DISTRICTS:
            add(f"D-{code}", f"{name}居委会", "community", f"D-{code[:9]}", code)
    rules = [
        {
            "class_prefix": "",
            "region_prefix": code,
            "department_id": dept.id,
            "auto_dispatch": False,
            "note": "属地管理：区城管办",
        }
        for code, dept in (
            (d.region_code, d) for d in departments.values() if d.kind == "district_office"
        )
    ]
    rules += [
        {
            "class_prefix": prefix,
            "region_prefix": "",
            "department_id": departments[unit].id,
            # A component's owner is beyond doubt; events still pass the dispatch desk.
            "auto_dispatch": len(prefix) == 5 and prefix[:2] in ("01", "02", "03", "04", "05"),
            "note": "权属单位",
        }
        for prefix, unit in CLASS_RULES.items()
    ]
    session.execute(insert(ResponsibilityRule), rules)
    return departments


def _users(session: Session, departments: dict[str, Department]) -> int:
    password_hash = hash_password(DEMO_PASSWORD)  # one hash: argon2 is slow on purpose
    for username, role, display, dept_code in DEMO_USERS:
        session.add(
            User(
                username=username,
                display_name=display,
                role=role,
                password_hash=password_hash,
                department_id=departments[dept_code].id if dept_code else None,
                grid_codes=INSPECTOR_GRIDS.get(username, []),
                phone=f"1380592{len(username):04d}",
            )
        )
    session.flush()
    return len(DEMO_USERS)


def _components(session: Session, departments: dict[str, Department], rng: random.Random) -> int:
    grids = session.execute(
        select(UnitGrid.code, UnitGrid.centroid_lon, UnitGrid.centroid_lat).order_by(UnitGrid.code)
    ).all()
    kinds = ("01002", "01003", "01001", "01037", "03005", "01005", "01011", "04002")
    rows: list[dict[str, Any]] = []
    serial: dict[tuple[str, str], int] = {}
    for grid_code, lon, lat in rng.sample(list(grids), min(400, len(grids))):
        class_code = rng.choice(kinds)
        division = grid_code[:6]
        serial[(division, class_code)] = serial.get((division, class_code), 0) + 1
        owner_code = _owner_for(class_code)
        owner = departments.get(owner_code or "") or departments[f"D-{division}"]
        rows.append(
            {
                "identifier": f"{division}{class_code}{serial[(division, class_code)]:06d}",
                "legacy_identifier": None,
                "class_code": class_code,
                "name": "",
                "lon": lon + rng.uniform(-0.0003, 0.0003),
                "lat": lat + rng.uniform(-0.0003, 0.0003),
                "unit_grid": grid_code,
                "managing_department_id": owner.id,
                "owner_department_id": owner.id,
                "maintainer_department_id": owner.id,
                "responsible_person": "养护班组长",
                "phone": "0592-12319",
                "status": "完好",
            }
        )
    names = dict(session.execute(select(ProblemClass.code, ProblemClass.name)).all())
    for row in rows:
        row["name"] = names.get(row["class_code"], "")
    session.execute(insert(Component), rows)
    return len(rows)


# Well-known places of the seeds and the city, each put in its real community. The demo's
# street and community shapes are generated, so each point is placed inside the generated
# community rather than at its real coordinates.
DEMO_PLACES = (
    ("明发商业广场", "poi", "350203011003"),
    ("厦禾路1108号", "doorplate", "350203008001"),
    ("厦门火车站", "poi", "350203008002"),
    ("中山路步行街", "poi", "350203003018"),
    ("沙坡尾", "place", "350203001018"),
    ("曾厝垵", "place", "350203005007"),
    ("白城沙滩", "place", "350203005002"),
    ("湖滨南路", "place", "350203007021"),
    ("前埔不夜城", "poi", "350203010029"),
    ("五缘湾湿地公园", "poi", "350206003025"),
    ("叶厝菜市场", "poi", "350211002004"),
)


def _gazetteer(session: Session, places: PlaceIndex) -> int:
    rows = []
    for name, kind, community in DEMO_PLACES:
        lon, lat = demo_xiamen.sample_point(places, community)
        rows.append({"name": name, "kind": kind, "lon": lon, "lat": lat, "district": community[:6]})
    # Every community's office, as people name it on the phone.
    for region in places.regions("community"):
        if region.code[:6] in DETAILED_DISTRICTS:
            lon, lat = demo_xiamen.sample_point(places, region.code)
            rows.append(
                {
                    "name": f"{region.name}居委会",
                    "kind": "poi",
                    "lon": lon,
                    "lat": lat,
                    "district": region.code[:6],
                }
            )
    return import_points(session, rows, source="demo gazetteer")


def _owner_for(class_code: str) -> str | None:
    for length in range(len(class_code), -1, -1):
        if class_code[:length] in CLASS_RULES:
            return CLASS_RULES[class_code[:length]]
    return None


# -- cases ---------------------------------------------------------------------------------------
DEMO_STORIES = (
    ("06010", "路边暴露垃圾，影响市容", "public"),
    ("06042", "垃圾箱满溢，周边散落垃圾", "inspector"),
    ("09006", "占道经营，水果摊占用人行道", "video"),
    ("09005", "店外经营，餐馆桌椅摆到门外", "inspector"),
    ("07001", "电线杆上张贴非法小广告", "inspector"),
    ("06036", "楼道口乱堆杂物", "hotline_12345"),
    ("01002", "污水井盖破损，存在安全隐患", "inspector"),
    ("01037", "路灯不亮，连续三盏", "wechat"),
    ("21004", "污水冒溢，污染路面", "inspector"),
    ("21001", "暴雨后道路积水", "sensor"),
    ("09010", "非机动车乱停放，堵塞盲道", "video"),
    ("06028", "夜间噪声扰民", "hotline_12319"),
    ("08004", "工地扬尘未覆盖", "inspector"),
    ("06001", "楼顶私搭乱建", "partner_12345"),
    ("22002", "房屋一套改多套，违规分隔出租", "hotline_12345"),
)
STAGE_PLAN = (
    ("reported", 25),
    ("verifying", 15),
    ("pending_filing", 15),
    ("rejected", 12),
    ("filed", 18),
    ("dispatched", 70),
    ("result_submitted", 15),
    ("checking", 15),
    ("check_reported", 10),
    ("closed", 45),
    ("archived", 40),
    ("suspended", 5),
    ("returned", 8),
    ("coordinating", 7),
)


def _cases(
    session: Session,
    places: PlaceIndex,
    calendar: WorkingCalendar,
    now: datetime,
    count: int,
    rng: random.Random,
    progress: Progress | None,
    photos: dict[str, str],
) -> int:
    users = {u.username: u for u in session.scalars(select(User))}
    actors = {name: Actor.of(user) for name, user in users.items()}
    grids = session.execute(
        select(UnitGrid.code, UnitGrid.centroid_lon, UnitGrid.centroid_lat).order_by(UnitGrid.code)
    ).all()
    targets = [state for state, weight in STAGE_PLAN for _ in range(weight)]
    made = 0
    for index in range(count):
        target = rng.choice(targets)
        class_code, text, source = rng.choice(DEMO_STORIES)
        _code, lon, lat = rng.choice(grids)
        start = now - timedelta(days=rng.uniform(0.2, 45))
        start = calendar.add_working_minutes(start, 0)  # reports arrive in working hours
        if start > now:
            start = now - timedelta(hours=1)
        case, _ = receive(
            session,
            Report(
                source=source,
                class_code=class_code,
                description=text,
                lon=lon,
                lat=lat,
                reporter_name="市民" if source in ("public", "wechat") else None,
                reporter_phone="13900000000" if source in ("public", "wechat") else None,
                photos=[photos["before"]],
            ),
            actor=actors["admin"],
            places=places,
            calendar=calendar,
            now=start,
        )
        _drive(session, case, target, actors, calendar, start, now, rng, photos)
        made += 1
        if progress is not None and index % 25 == 0:
            progress("cases", index + 1, count)
    return made


def _path_to(target: str, state: str) -> list[str]:
    """The actions that take a case from its first state to the target stage."""
    head: list[str] = []
    if state == "reported":
        head = ["send_to_verify", "verify"]
    if target in ("reported",):
        return []
    if target == "verifying":
        return head[:1]
    if target == "pending_filing":
        return head
    if target == "rejected":
        return [*head, "reject"]
    head = [] if state == "filed" else [*head, "file"]
    plans = {
        "filed": [],
        "coordinating": ["coordinate"],
        "dispatched": ["dispatch"],
        "returned": ["dispatch", "return"],
        "suspended": ["dispatch", "suspend"],
        "result_submitted": ["dispatch", "submit_result"],
        "checking": ["dispatch", "submit_result", "approve_result"],
        "check_reported": ["dispatch", "submit_result", "approve_result", "report_check"],
        "closed": ["dispatch", "submit_result", "approve_result", "report_check", "close"],
        "archived": [
            "dispatch",
            "submit_result",
            "approve_result",
            "report_check",
            "close",
            "return_visit",
        ],
    }
    return [*head, *plans[target]]


_PAYLOADS: dict[str, dict[str, Any]] = {
    "verify": {"confirmed": True, "photos": ["verify"]},
    "reject": {"reason": "经核实不属于城市管理范围"},
    "coordinate": {"note": "权属不明，协调相关单位"},
    "return": {"reason": "非本单位职责"},
    "suspend": {"reason": "涉及历史遗留问题，需统筹解决"},
    "submit_result": {
        "result": "已安排人员到场处置完毕",
        "method": "service",
        "photos": ["after"],
    },
    "report_check": {"passed": True, "photos": ["check"]},
    "return_visit": {"satisfied": True},
}
_ACTOR_FOR = {
    "send_to_verify": "operator",
    "verify": "admin",
    "file": "operator",
    "reject": "operator",
    "coordinate": "dispatcher",
    "dispatch": "dispatcher",
    "return": "admin",
    "suspend": "dispatcher",
    "submit_result": "admin",
    "approve_result": "dispatcher",
    "report_check": "admin",
    "close": "operator",
    "return_visit": "operator",
}


def _demo_photos(session: Session, directory: Path, now: datetime) -> dict[str, str]:
    """Four generated photos (before, verify, after, check) shared by the demo cases."""
    from PIL import Image, ImageDraw

    ids: dict[str, str] = {}
    for name, ground, mess in (
        ("before", "#9a9a9a", "#5b4636"),
        ("verify", "#8f8f8f", "#5b4636"),
        ("after", "#a4a4a4", None),
        ("check", "#a0a0a0", None),
    ):
        image = Image.new("RGB", (320, 240), ground)
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 170, 320, 240), fill="#6d6d6d")  # the kerb
        if mess:
            for x in range(40, 280, 36):
                draw.ellipse((x, 120 + x % 30, x + 40, 170), fill=mess)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
        ids[name] = store_photo(
            session, buffer.getvalue(), f"demo-{name}.jpg", directory=directory, now=now
        ).id
    return ids


def _drive(
    session: Session,
    case: Case,
    target: str,
    actors: dict[str, Actor],
    calendar: WorkingCalendar,
    start: datetime,
    now: datetime,
    rng: random.Random,
    photos: dict[str, str],
) -> None:
    at = start
    for action in _path_to(target, case.state):
        if case.state not in BY_ACTION[action].sources:
            # Intake already took this step: a component report went straight to its owner
            # (automatic dispatch), or a duplicate joined an open case.
            continue
        minutes = {
            "submit_result": rng.uniform(60, 900),
            "return": rng.uniform(5, 40),
            "return_visit": rng.uniform(60, 600),
        }.get(action, rng.uniform(3, 50))
        at = calendar.add_working_minutes(at, minutes)
        if at >= now:
            return
        payload = dict(_PAYLOADS.get(action, {}))
        if "photos" in payload:
            payload["photos"] = [photos[name] for name in payload["photos"]]
        if action == "submit_result":
            payload["method"] = rng.choices(("service", "management", "enforcement"), (7, 2, 1))[0]
        case = transition(
            session, case.id, action, actors[_ACTOR_FOR[action]], payload, now=at, calendar=calendar
        )
