"""The demo city's enforcement side: 厦门市城市管理行政执法局, 思明区城管局 and its squads,
officers with demo accounts, the national laws the demo's violations cite (`data/laws.csv`:
article texts are our summaries, marked 摘要 待核对原文), and illustrative discretion tiers
marked as demo data (`data/violations.csv`, `data/discretion_tiers.csv`)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.enforcement import service
from cityloop.enforcement.importing import import_demo_registers
from cityloop.org.models import Department, User

# (username, role, display name, officer name, 执法证号, squad code)
ACCOUNTS = (
    ("officer", "officer", "梧村中队 执法队员 陈志明", "陈志明", "35020318001", "SM-WUCUN"),
    ("officer2", "officer", "梧村中队 执法队员 林海峰", "林海峰", "35020318002", "SM-WUCUN"),
    ("legal_reviewer", "legal_reviewer", "思明区城管局 法制审核员 黄丽", None, None, None),
    ("enforcement_chief", "enforcement_chief", "思明区城管局 执法负责人 许建国", None, None, None),
)
EXTRA_OFFICERS = (
    ("吴晓东", "35020318003", "SM-JIALIAN"),
    ("郑雅琴", "35020318004", "SM-JIALIAN"),
)


def build(session: Session, password_hash: str) -> dict[str, int]:
    """Registers, units, officers and accounts (the caller commits)."""
    service.seed_periods(session)
    report = import_demo_registers(session)
    wucun_dept = session.scalar(select(Department).where(Department.code == "D-350203008"))
    jialian_dept = session.scalar(select(Department).where(Department.code == "D-350203011"))
    city = service.add_unit(
        session, code="XM-CGZF", name="厦门市城市管理行政执法局", kind="bureau", doc_prefix="厦城管"
    )
    siming = service.add_unit(
        session,
        code="SM-CGJ",
        name="厦门市思明区城市管理局",
        kind="bureau",
        parent=city,
        doc_prefix="厦思城管",
    )
    from cityloop.documents.service import register_issuer

    for bureau in (city, siming):
        assert bureau.doc_prefix is not None
        register_issuer(session, bureau.code, bureau.name, bureau.doc_prefix)
    squads = {
        "SM-WUCUN": service.add_unit(
            session,
            code="SM-WUCUN",
            name="梧村中队",
            kind="squad",
            parent=siming,
            department_id=wucun_dept.id if wucun_dept else None,
        ),
        "SM-JIALIAN": service.add_unit(
            session,
            code="SM-JIALIAN",
            name="嘉莲中队",
            kind="squad",
            parent=siming,
            department_id=jialian_dept.id if jialian_dept else None,
        ),
    }
    valid = (date(2018, 1, 1), date(2030, 12, 31))
    for username, role, display, officer_name, cert, squad in ACCOUNTS:
        user = User(
            username=username,
            display_name=display,
            role=role,
            password_hash=password_hash,
            department_id=None,
            grid_codes=[],
        )
        session.add(user)
        session.flush()
        if officer_name and cert and squad:
            service.add_officer(
                session,
                name=officer_name,
                cert_no=cert,
                unit=squads[squad],
                valid_from=valid[0],
                valid_until=valid[1],
                user_id=user.id,
            )
    for name, cert, squad in EXTRA_OFFICERS:
        service.add_officer(
            session,
            name=name,
            cert_no=cert,
            unit=squads[squad],
            valid_from=valid[0],
            valid_until=valid[1],
        )
    report["officers"] = len(EXTRA_OFFICERS) + 2
    return report


# -- demo cases in every stage ---------------------------------------------------------------
# (state to reach, how many): a few dozen, from registered to archived and the branches.
CASE_PLAN = (
    ("registered", 3),
    ("investigating", 4),
    ("case_review", 2),
    ("legal_review", 2),
    ("ready", 2),
    ("notified", 3),
    ("hearing", 2),
    ("decided", 2),
    ("executing", 4),
    ("executed", 2),
    ("closed", 4),
    ("not_punished", 2),
    ("archived", 2),
    ("withdrawn", 1),
    ("revoked", 1),
    ("simple", 4),
)
PATH = (
    "file",
    "add_evidence",
    "submit_review",
    "review",
    "legal_review",
    "notify",
    "record_statement",
    "decide",
    "deliver",
    "record_payment",
    "close",
    "archive",
)
STOP = {
    "registered": 0,
    "investigating": 2,
    "case_review": 3,
    "legal_review": 4,
    "ready": 5,
    "notified": 6,
    "hearing": 6,
    "decided": 8,
    "executing": 9,
    "executed": 10,
    "closed": 11,
    "archived": 12,
    "not_punished": 2,
    "withdrawn": 2,
    "revoked": 9,
}
FACTS = {
    "SR-ZT-01": "在公交站台及电线杆上张贴小广告",
    "SR-DW-01": "超出门窗外墙摆放桌椅、货架经营",
    "GH-WJ-01": "未取得建设工程规划许可证在屋顶加建",
}
NAMES = ("陈建华", "林秀英", "黄志强", "吴丽娟", "郑海涛", "王美玲", "刘国庆", "蔡文杰")


def build_cases(session: Session, *, now: Any, calendar: Any, seed: int = 14) -> int:
    """Enforcement cases in every stage, made through the engine like real ones; the 厦禾路
    1108号 story (seed 000) is built by `story_1108`."""
    import random
    from datetime import timedelta

    from cityloop.enforcement.ids import id_check_char
    from cityloop.enforcement.models import Officer
    from cityloop.workflow.actors import Actor

    rng = random.Random(seed)
    users = {u.username: Actor.of(u) for u in session.scalars(select(User))}
    pair = [o.id for o in session.scalars(select(Officer).order_by(Officer.id).limit(2))]
    made = 0
    for target, count in CASE_PLAN:
        for _ in range(count):
            code = rng.choice(tuple(FACTS))
            body = (
                f"3502031985{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(100, 999)}"
            )
            party = service.create_party(
                session,
                {
                    "kind": "person",
                    "name": rng.choice(NAMES),
                    "id_number": body + id_check_char(body),
                },
                now=now,
                secret="demo-party-key",
            )
            at = now - timedelta(days=rng.randint(20, 80), hours=rng.randint(0, 6))
            record = service.create(
                session,
                {
                    "violation_code": code if target != "simple" else "SR-DW-01",
                    "party_id": party.id,
                    "facts": FACTS[code if target != "simple" else "SR-DW-01"],
                    "lon": 118.10 + rng.random() * 0.08,
                    "lat": 24.45 + rng.random() * 0.05,
                },
                users["officer"],
                now=at,
                calendar=calendar,
            )
            made += 1

            def step(
                action: str, who: str = "officer", _id: int = record.id, **payload: Any
            ) -> None:
                nonlocal at
                at = at + timedelta(days=1)
                service.transition(
                    session, _id, action, users[who], payload, now=at, calendar=calendar
                )

            if target == "simple":
                step("decide_on_site", fine=100, tier="minor", officer_ids=pair)
                continue
            for action in PATH[: STOP[target]]:
                if action == "add_evidence":
                    step(
                        action,
                        officer_ids=pair,
                        record={"kind": "inspection_record", "content": "现场检查笔录（示例）"},
                    )
                elif action == "submit_review":
                    step(action, major=target == "legal_review")
                elif action == "review":
                    step(action, "enforcement_chief", approved=True, note="同意")
                elif action == "legal_review":
                    if record.state == "legal_review":
                        step(action, "legal_reviewer", approved=True, note="同意")
                elif action == "notify":
                    if code == "GH-WJ-01":
                        step(action, penalty="rectify")
                    else:
                        step(action, fine=500)
                elif action == "record_statement":
                    step(action, waived=True, hearing_waived=True)
                elif action == "decide":
                    fine = {"SR-ZT-01": 100, "SR-DW-01": 500}.get(code)
                    if fine:
                        step(action, fine=fine, officer_ids=pair)
                    else:
                        step(action, penalty="rectify", officer_ids=pair)
                elif action == "deliver":
                    step(action, method="direct")
                elif action == "record_payment":
                    if record.state == "executing":
                        step(action, amount=record.fine_cents / 100)
                elif action in ("close", "archive"):
                    step(action, "enforcement_chief")
                else:
                    step(action)
            if target == "hearing" and record.state == "notified":
                record.hearing_offered = True  # a demo hearing: the party asked in time
                record.hearing_request_due_at = at + timedelta(days=5)
                step("request_hearing")
            elif target == "not_punished":
                step("order_rectification", days=3, officer_ids=pair)
                step("recheck", rectified=True, officer_ids=pair)
                step("no_penalty", "legal_reviewer", basis="minor_rectified", reason="已及时改正")
            elif target == "withdrawn":
                step("withdraw", "enforcement_chief", reason="当事人非违法行为实施人（示例）")
            elif target == "revoked":
                step("revoke", "enforcement_chief", reason="行政复议撤销（示例）")
    return made


def story_1108(session: Session, *, now: Any, calendar: Any, places: Any) -> int:
    """Seed 000's 厦禾路1108号 "一套改多套", replayed to its end at `now`: the complaint,
    dispatch to 思明区 and 梧村, the first feedback and the enforcement case opened from it,
    evidence, rectification, 不予处罚 once rectified, and the complaint's final feedback
    arriving by itself, approved and waiting for the inspector's check."""
    from datetime import timedelta

    from cityloop.cases import service as cases
    from cityloop.enforcement.ids import id_check_char
    from cityloop.enforcement.models import Officer
    from cityloop.intake.service import Report, receive
    from cityloop.places.demo_xiamen import sample_point
    from cityloop.workflow.actors import Actor

    users = {u.username: Actor.of(u) for u in session.scalars(select(User))}
    departments = {d.code: d.id for d in session.scalars(select(Department))}
    pair = [
        o.id
        for o in session.scalars(
            select(Officer).where(Officer.cert_no.in_(("35020318001", "35020318002")))
        )
    ]
    lon, lat = sample_point(places, "350203008001")
    at = now - timedelta(days=170)
    case, _ = receive(
        session,
        Report(
            source="hotline_12345",
            class_code="22002",
            description="厦禾路1108号某室将房屋一套改多套，违规分隔出租",
            lon=lon,
            lat=lat,
            address="厦禾路1108号",
        ),
        actor=users["operator"],
        places=places,
        calendar=calendar,
        now=at,
    )

    def loop(action: str, who: str, hours: float, **payload: Any) -> None:
        nonlocal at
        at = at + timedelta(hours=hours)
        cases.transition(session, case.id, action, users[who], payload, now=at, calendar=calendar)

    loop("file", "operator", 0.2)
    loop("dispatch", "dispatcher", 0.2, department_id=departments["D-350203"])
    loop("pass_down", "handler", 0.5, department_id=departments["D-350203008"])
    loop("feedback", "handler_wucun", 28, note="梧村中队已调查取证完毕，正上报立案审批")
    body = "35020319750618201"
    party = service.create_party(
        session,
        {
            "kind": "person",
            "name": "张某",
            "id_number": body + id_check_char(body),
            "address": "厦禾路1108号",
        },
        now=at,
        secret="demo-party-key",
    )
    loop("open_enforcement", "handler_wucun", 1, violation_code="GH-WJ-01", party_id=party.id)
    record_id = case.enforcement_case_id
    assert record_id is not None

    def enf(action: str, who: str, after_days: float, **payload: Any) -> None:
        nonlocal at
        at = at + timedelta(days=after_days)
        service.transition(
            session, record_id, action, users[who], payload, now=at, calendar=calendar
        )

    enf("file", "officer", 1)
    enf(
        "add_evidence",
        "officer",
        0.1,
        officer_ids=pair,
        record={"kind": "inspection_record", "content": "现场勘验：该室被分隔为五个独立单间"},
    )
    enf("order_rectification", "officer", 0.1, days=60, officer_ids=pair)
    loop("supervise", "leader", 24 * 18, note="请梧村中队加快查处进度，按周报送进展")
    enf("request_extension", "officer", 68, days=90, reason="当事人正在整改，需复查")
    enf("grant_extension", "enforcement_chief", 0.2)
    enf("recheck", "officer", 80, rectified=True, officer_ids=pair)
    enf(
        "no_penalty",
        "legal_reviewer",
        0.1,
        basis="minor_rectified",
        reason="在案件查处过程中，当事人已自行整改完毕",
    )
    enf("close", "enforcement_chief", 0.2)
    # The final feedback arrived by itself; the centre approves it and the grid's inspector
    # has the check to do (the demo leaves it on the inspector's list).
    loop("approve_result", "dispatcher", 2)
    return 1
