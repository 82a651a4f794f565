"""Reading and seeding the taxonomy. Services flush; the caller commits."""

from __future__ import annotations

import json
import threading
import time
import weakref
from datetime import date
from importlib import resources
from typing import Any

from sqlalchemy import event as orm_event
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from cityloop.errors import NotFound, ValidationFailed
from cityloop.kit.calendar import WorkingCalendar
from cityloop.taxonomy.models import CalendarOverride, ClassAlias, ProblemClass, StageLimit

STANDARD = "GB/T 47678.5-2026"
URGENCIES = ("A", "B", "C")

# Default stage clocks in working minutes; the handling stage comes from the class and the
# urgency instead. Values follow the city rules collected in standards/cn_standards.md §2.3
# (Fuzhou: verify + file within 1 h; Taiyuan: file + dispatch within 30 min; check 1 h).
DEFAULT_STAGE_LIMITS: dict[str, tuple[str, int]] = {
    "accept": ("受理", 30),
    "verify": ("核实", 60),
    "file": ("立案", 30),
    "dispatch": ("派遣", 30),
    "review": ("反馈审核", 60),
    "check": ("核查", 60),
    "close": ("结案", 60),
}


def _load_json(name: str) -> Any:
    return json.loads(
        resources.files("cityloop.taxonomy").joinpath("data", name).read_text("utf-8")
    )


def default_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The default classes and aliases as plain rows, built from the shipped data files."""
    standard = _load_json("gbt47678_5.json")
    local = _load_json("local.json")
    templates = local["standards_templates"]
    urgency_of: dict[str, str] = {}
    for urgency, codes in local["urgency_overrides"].items():
        for code in codes:
            urgency_of[code] = urgency
    days = local["handling_days"]
    matter_names = {
        child["code"]: child["name"]
        for major in standard["component_anomaly_matters"]
        for child in major["children"]
    }
    classes: list[dict[str, Any]] = []

    def add_tree(majors: list[dict[str, Any]], kind: str, source: str) -> None:
        for major in majors:
            classes.append(
                {
                    "code": major["code"],
                    "parent_code": None,
                    "level": "major",
                    "kind": kind,
                    "name": major["name"],
                    "matter_name": None,
                    "name_en": major.get("name_en"),
                    "standard": source,
                    "default_urgency": "C",
                    "handling_days": dict(days),
                    "filing_standard": "",
                    "closure_standard": "",
                    "manual": "",
                    "active": True,
                }
            )
            for child in major["children"]:
                template = templates[kind]
                name = child["name"]
                classes.append(
                    {
                        "code": child["code"],
                        "parent_code": major["code"],
                        "level": "minor",
                        "kind": kind,
                        "name": name,
                        "matter_name": matter_names.get(child["code"]),
                        "name_en": child.get("name_en"),
                        "standard": source,
                        "default_urgency": child.get("default_urgency")
                        or urgency_of.get(child["code"], "C"),
                        "handling_days": dict(days),
                        "filing_standard": template["filing"].format(name=name),
                        "closure_standard": template["closure"].format(name=name),
                        "manual": template["manual"],
                        "active": True,
                    }
                )

    add_tree(standard["components"], "component", STANDARD)
    add_tree(standard["events"], "event", STANDARD)
    add_tree(local["extension_classes"], "event", "local")

    by_name = {c["name"]: c["code"] for c in classes if c["level"] == "minor"}
    renames: dict[str, str] = local["legacy_renames"]
    aliases: dict[tuple[str, str], dict[str, Any]] = {}

    def alias(scheme: str, code: str, name: str) -> None:
        target = by_name.get(renames.get(name, name))
        if target is not None:
            aliases[(scheme, code)] = {
                "scheme": scheme,
                "alias": code,
                "class_code": target,
                "alias_name": name,
            }

    legacy = standard["legacy"]
    for major in legacy["bj_layer_codes_gbt30428_style"]["components"]:
        for child in major["children"]:
            alias("GB/T 30428.2", child["code"], child["name"])
    for group in ("components", "events"):
        for major in legacy["beijing_chaoyang_2013"][group]:
            for child in major.get("children", []):
                alias("beijing-chaoyang-2013", child["code"], child["name"])
    for event in legacy["cmict_partial_event_codes"]["events"]:
        alias("GB/T 30428.2-events", event["code"], event["name"])
    for major in local["extension_classes"]:
        for child in major["children"]:
            for code in child.get("legacy", []):
                aliases[("beijing-chaoyang-2013", code)] = {
                    "scheme": "beijing-chaoyang-2013",
                    "alias": code,
                    "class_code": child["code"],
                    "alias_name": child["name"],
                }
    return classes, list(aliases.values())


def seed_defaults(session: Session) -> int:
    """Write the default taxonomy into an empty database; returns the number of classes."""
    if session.scalar(select(func.count()).select_from(ProblemClass)):
        return 0
    classes, aliases = default_rows()
    majors = [c for c in classes if c["level"] == "major"]
    minors = [c for c in classes if c["level"] == "minor"]
    session.execute(insert(ProblemClass), majors)
    session.execute(insert(ProblemClass), minors)
    session.execute(insert(ClassAlias), aliases)
    session.execute(
        insert(StageLimit),
        [
            {"stage": stage, "label": label, "working_minutes": minutes}
            for stage, (label, minutes) in DEFAULT_STAGE_LIMITS.items()
        ],
    )
    session.flush()
    return len(classes)


# Every report reads its class; the taxonomy changes a few times a year. Copies of the class
# rows are kept per database for CLASS_CACHE_SECONDS: edits made through this process drop them
# at once (update_class), other processes see edits within that time, as with the calendar.
CLASS_CACHE_SECONDS = 30.0
_class_cache: weakref.WeakKeyDictionary[Any, tuple[float, dict[str, ProblemClass]]] = (
    weakref.WeakKeyDictionary()
)
_class_cache_lock = threading.Lock()


def _database_of(session: Session) -> Any:
    # The pool: shared by an engine, its copies with other options and their connections.
    bind: Any = session.get_bind()
    return bind.engine.pool


def _cached_classes(session: Session) -> dict[str, ProblemClass]:
    """Classes by code and by legacy alias: detached copies, read-only, never added to a
    session (they are built from the rows, not loaded into this session's identity map)."""
    database = _database_of(session)
    entry = _class_cache.get(database)
    if entry is not None and time.monotonic() - entry[0] <= CLASS_CACHE_SECONDS:
        return entry[1]
    columns = ProblemClass.__table__.columns
    by_code = {
        row.code: ProblemClass(**{c.key: getattr(row, c.key) for c in columns})
        for row in session.execute(select(*columns))
    }
    for alias, class_code in session.execute(select(ClassAlias.alias, ClassAlias.class_code)):
        if alias not in by_code and class_code in by_code:
            by_code[alias] = by_code[class_code]
    with _class_cache_lock:
        _class_cache[database] = (time.monotonic(), by_code)
    return by_code


def forget_cached_classes(session: Session) -> None:
    """Drop the copies now, and again when this session commits: a request that read the
    classes in between must not keep the old ones for CLASS_CACHE_SECONDS."""
    database = _database_of(session)
    with _class_cache_lock:
        _class_cache.pop(database, None)
    session.info[_FORGET_ON_COMMIT] = database


_FORGET_ON_COMMIT = "cityloop_forget_classes"


@orm_event.listens_for(Session, "after_commit")
def _forget_committed_edits(session: Session) -> None:
    database = session.info.pop(_FORGET_ON_COMMIT, None)
    if database is not None:
        with _class_cache_lock:
            _class_cache.pop(database, None)


def find_class(session: Session, code: str) -> ProblemClass | None:
    """A class by its code, major or minor, in use or not: a read-only copy (see above)."""
    found = _cached_classes(session).get(code)
    if found is None or found.code != code:  # seeded since the copies were taken
        found = session.get(ProblemClass, code)
    return found


def get_class(session: Session, code: str, *, field: str = "class_code") -> ProblemClass:
    """A minor class by its current code or a legacy alias; a clear error otherwise."""
    found = _cached_classes(session).get(code)
    if found is None:  # a class seeded since the copies were taken
        found = session.get(ProblemClass, code)
    if found is None:
        alias_row = session.scalars(select(ClassAlias).where(ClassAlias.alias == code)).first()
        if alias_row is not None:
            found = session.get(ProblemClass, alias_row.class_code)
    if found is None:
        raise ValidationFailed(f"unknown problem class code {code!r}", field=field)
    if found.level != "minor":
        raise ValidationFailed(
            f"{code!r} is a major class ({found.name}); choose one of its sub-classes", field=field
        )
    if not found.active:
        raise ValidationFailed(f"problem class {code!r} is no longer in use", field=field)
    return found


def list_classes(
    session: Session, *, kind: str | None = None, parent_code: str | None = None
) -> list[ProblemClass]:
    query = select(ProblemClass).order_by(ProblemClass.code)
    if kind is not None:
        query = query.where(ProblemClass.kind == kind)
    if parent_code is not None:
        query = query.where(ProblemClass.parent_code == parent_code)
    return list(session.scalars(query))


def minor_class_names(session: Session) -> dict[str, str]:
    """Code → name of every class a case can be filed under."""
    rows = session.execute(
        select(ProblemClass.code, ProblemClass.name).where(
            ProblemClass.level == "minor", ProblemClass.active
        )
    ).all()
    return {code: name for code, name in rows}


def handling_days(problem_class: ProblemClass, urgency: str) -> float:
    if urgency not in URGENCIES:
        raise ValidationFailed(f"urgency must be one of A, B, C, not {urgency!r}", field="urgency")
    limits = problem_class.handling_days or {}
    return float(limits.get(urgency, {"A": 1, "B": 2, "C": 4}[urgency]))


def stage_limits(session: Session) -> dict[str, int]:
    return {row.stage: row.working_minutes for row in session.scalars(select(StageLimit))}


def update_class(session: Session, code: str, changes: dict[str, Any]) -> ProblemClass:
    """Edit a class's standards text, urgency or limits (R-DX-2)."""
    row = session.get(ProblemClass, code)
    if row is None:
        raise NotFound(f"problem class {code!r} not found")
    editable = {
        "name_en",
        "default_urgency",
        "handling_days",
        "filing_standard",
        "closure_standard",
        "manual",
        "active",
    }
    for key, value in changes.items():
        if key not in editable:
            raise ValidationFailed(f"{key} cannot be edited", field=key)
        if key == "default_urgency" and value not in URGENCIES:
            raise ValidationFailed("default_urgency must be A, B or C", field=key)
        if key == "handling_days" and (
            not isinstance(value, dict)
            or not set(value) <= set(URGENCIES)
            or any(not isinstance(v, int | float) or v <= 0 for v in value.values())
        ):
            raise ValidationFailed("handling_days maps A/B/C to positive working days", field=key)
        setattr(row, key, value)
    session.flush()
    forget_cached_classes(session)
    return row


def working_calendar(session: Session, timezone: str = "Asia/Shanghai") -> WorkingCalendar:
    """The official calendar plus this city's overrides."""
    overrides = {row.day: row.is_workday for row in session.scalars(select(CalendarOverride))}
    return WorkingCalendar(
        timezone=timezone, overrides=overrides, stage_minutes=stage_limits(session)
    )


class TimeRulesCache:
    """The working calendar (overrides, stage limits) read once and kept for `ttl` seconds in
    this process: every request needs it and it changes a few times a year. Edits made through
    this process drop it at once; other processes see them within `ttl`."""

    def __init__(self, timezone: str = "Asia/Shanghai", ttl: float = 30.0) -> None:
        self.timezone, self.ttl = timezone, ttl
        self._calendar: WorkingCalendar | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    def get(self, session: Session) -> WorkingCalendar:
        with self._lock:
            if self._calendar is None or time.monotonic() - self._loaded > self.ttl:
                self._calendar = working_calendar(session, self.timezone)
                self._loaded = time.monotonic()
            return self._calendar

    def cached(self) -> WorkingCalendar | None:
        """The calendar if it is loaded and fresh, without touching the database."""
        calendar = self._calendar
        if calendar is None or time.monotonic() - self._loaded > self.ttl:
            return None
        return calendar

    def invalidate(self) -> None:
        with self._lock:
            self._calendar = None


def calendar_overrides(session: Session) -> list[CalendarOverride]:
    return list(session.scalars(select(CalendarOverride).order_by(CalendarOverride.day)))


def set_calendar_override(session: Session, day: date, is_workday: bool, note: str = "") -> None:
    row = session.get(CalendarOverride, day)
    if row is None:
        session.add(CalendarOverride(day=day, is_workday=is_workday, note=note))
    else:
        row.is_workday, row.note = is_workday, note
    session.flush()
