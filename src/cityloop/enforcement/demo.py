"""The demo city's enforcement side: 厦门市城市管理行政执法局, 思明区城管局 and its squads,
officers with demo accounts, the national laws the demo's violations cite (`data/laws.csv`:
article texts are our summaries, marked 摘要 待核对原文), and illustrative discretion tiers
marked as demo data (`data/violations.csv`, `data/discretion_tiers.csv`)."""

from __future__ import annotations

from datetime import date

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
