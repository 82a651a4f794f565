"""CSV import of the registers (R-LE-2): laws and articles, violations, discretion tiers.

Each file has a header row (see `data/*.csv`, the demo city's own files). A bad row fails the
whole file with a ValidationFailed naming the line and the column; nothing is half-imported
(the caller's transaction rolls back).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.enforcement import service
from cityloop.enforcement.models import DiscretionStandard, DiscretionTier, Law, Violation
from cityloop.errors import ValidationFailed

DATA = Path(__file__).parent / "data"


def _rows(text: str | Iterable[str], columns: set[str]) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text) if isinstance(text, str) else text)
    missing = columns - set(reader.fieldnames or [])
    if missing:
        raise ValidationFailed(f"the CSV lacks the columns {sorted(missing)}", field="file")
    return [(n, row) for n, row in enumerate(reader, start=2)]


def _int(row: dict[str, str], name: str, line: int) -> int:
    try:
        return int(row[name])
    except (TypeError, ValueError):
        raise ValidationFailed(f"line {line}: {name} must be a whole number", field=name) from None


def _float(row: dict[str, str], name: str, line: int) -> float | None:
    value = (row.get(name) or "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValidationFailed(f"line {line}: {name} must be a number", field=name) from None


def import_laws(session: Session, text: str) -> int:
    rows = _rows(text, {"law_code", "law_name", "article", "text"})
    laws: dict[str, Law] = {}
    for line, row in rows:
        code = row["law_code"].strip()
        if not code or not row["law_name"].strip():
            raise ValidationFailed(
                f"line {line}: law_code and law_name are required", field="law_code"
            )
        if code not in laws:
            effective = None
            if row.get("effective"):
                try:
                    effective = date.fromisoformat(row["effective"])
                except ValueError:
                    raise ValidationFailed(
                        f"line {line}: effective must be YYYY-MM-DD", field="effective"
                    ) from None
            laws[code] = service.add_law(
                session,
                code=code,
                name=row["law_name"].strip(),
                issuer=(row.get("issuer") or "").strip(),
                effective=effective,
            )
        service.add_article(
            session,
            laws[code],
            _int(row, "article", line),
            row["text"].strip(),
            is_summary=(row.get("is_summary") or "1").strip() not in ("0", "false", "no"),
        )
    return len(rows)


def import_violations(session: Session, text: str, *, demo_data: bool = False) -> int:
    rows = _rows(
        text,
        {"code", "name", "violation_law", "violation_article", "penalty_law", "penalty_article"},
    )
    for line, row in rows:
        code = row["code"].strip()
        if session.scalar(select(Violation).where(Violation.code == code)) is not None:
            raise ValidationFailed(f"line {line}: violation {code} exists already", field="code")
        try:
            broken = service.article_by_ref(
                session, row["violation_law"].strip(), _int(row, "violation_article", line)
            )
            punishing = service.article_by_ref(
                session, row["penalty_law"].strip(), _int(row, "penalty_article", line)
            )
        except ValidationFailed as exc:
            raise ValidationFailed(
                f"line {line}: {exc.message}", field="violation_article"
            ) from None
        standard = service.add_standard(
            session,
            code=f"ZYCL-{code}",
            name=f"{row['name'].strip()} 裁量基准",
            tiers=[],
            demo_data=demo_data,
            note="示例数据 (illustrative demo tiers, not a bureau's published 自由裁量基准)"
            if demo_data
            else "",
        )
        service.add_violation(
            session,
            code=code,
            name=row["name"].strip(),
            violation_article=broken,
            penalty_article=punishing,
            class_codes=(row.get("class_codes") or "").split(),
            standard=standard,
        )
    return len(rows)


def import_tiers(session: Session, text: str) -> int:
    rows = _rows(text, {"violation_code", "tier"})
    for line, row in rows:
        violation = session.scalar(
            select(Violation).where(Violation.code == row["violation_code"].strip())
        )
        if violation is None or violation.standard_id is None:
            raise ValidationFailed(
                f"line {line}: violation {row['violation_code']} is not registered",
                field="violation_code",
            )
        tier = row["tier"].strip()
        if tier not in service.TIERS:
            raise ValidationFailed(
                f"line {line}: tier must be one of {', '.join(service.TIERS)}", field="tier"
            )
        penalties = (row.get("penalties") or "").split()
        unknown = [p for p in penalties if p not in service.PENALTIES]
        if unknown:
            raise ValidationFailed(f"line {line}: unknown penalties {unknown}", field="penalties")
        values: dict[str, Any] = {
            name: _float(row, name, line)
            for name in ("fine_min", "fine_max", "percent_min", "percent_max")
        }
        if (
            values["fine_min"] is not None
            and values["fine_max"] is not None
            and values["fine_min"] > values["fine_max"]
        ):
            raise ValidationFailed(f"line {line}: fine_min is above fine_max", field="fine_min")
        existing = session.scalar(
            select(DiscretionTier).where(
                DiscretionTier.standard_id == violation.standard_id, DiscretionTier.tier == tier
            )
        )
        target = existing or DiscretionTier(standard_id=violation.standard_id, tier=tier)
        target.conditions = (row.get("conditions") or "").strip()
        target.fine_min, target.fine_max = values["fine_min"], values["fine_max"]
        target.percent_min, target.percent_max = values["percent_min"], values["percent_max"]
        target.percent_of = (row.get("percent_of") or "").strip() or None
        target.penalties = penalties
        target.first_offence_exempt = (row.get("first_offence_exempt") or "0").strip() == "1"
        if existing is None:
            session.add(target)
    session.flush()
    return len(rows)


def import_demo_registers(session: Session) -> dict[str, int]:
    standard_count = session.scalar(select(DiscretionStandard.id).limit(1))
    if standard_count is not None:
        return {}
    return {
        "law_articles": import_laws(session, (DATA / "laws.csv").read_text(encoding="utf-8")),
        "violations": import_violations(
            session, (DATA / "violations.csv").read_text(encoding="utf-8"), demo_data=True
        ),
        "discretion_tiers": import_tiers(
            session, (DATA / "discretion_tiers.csv").read_text(encoding="utf-8")
        ),
    }
