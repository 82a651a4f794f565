"""Registering and finding components. Services flush; the caller commits."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityloop.assets.models import COMPONENT_STATUSES, Component
from cityloop.errors import NotFound, ValidationFailed
from cityloop.org.models import Department
from cityloop.taxonomy.models import ClassAlias
from cityloop.taxonomy.service import get_class

_IDENTIFIER = re.compile(r"^\d{17}$")
_LEGACY_IDENTIFIER = re.compile(r"^\d{16}$")


def normalise_identifier(session: Session, identifier: str) -> tuple[str, str | None]:
    """(17-digit identifier, legacy 16-digit identifier or None) for a given code.

    A legacy code (6 division + 2 class + 2 sub-class + 6 serial, GB/T 30428.2) is mapped to
    the current class through the alias table and keeps its serial number."""
    if _IDENTIFIER.match(identifier):
        return identifier, None
    if _LEGACY_IDENTIFIER.match(identifier):
        old_class = identifier[6:10]
        alias = session.scalar(
            select(ClassAlias).where(
                ClassAlias.scheme == "GB/T 30428.2", ClassAlias.alias == old_class
            )
        )
        if alias is None:
            raise ValidationFailed(
                f"legacy component class {old_class} has no current equivalent", field="identifier"
            )
        return identifier[:6] + alias.class_code + identifier[10:], identifier
    raise ValidationFailed(
        "a component identifier has 17 digits (or 16 for the legacy scheme)", field="identifier"
    )


def register_component(
    session: Session,
    *,
    identifier: str,
    lon: float,
    lat: float,
    unit_grid: str | None = None,
    name: str | None = None,
    managing_department_id: int | None = None,
    owner_department_id: int | None = None,
    maintainer_department_id: int | None = None,
    responsible_person: str | None = None,
    phone: str | None = None,
    status: str = "完好",
) -> Component:
    full, legacy = normalise_identifier(session, identifier)
    problem_class = get_class(session, full[6:11], field="identifier")
    if problem_class.kind != "component":
        raise ValidationFailed(
            f"{full[6:11]} is an event class, not a component class", field="identifier"
        )
    if status not in COMPONENT_STATUSES:
        raise ValidationFailed(
            f"status must be one of {', '.join(COMPONENT_STATUSES)}", field="status"
        )
    for field_name, dept_id in (
        ("managing_department_id", managing_department_id),
        ("owner_department_id", owner_department_id),
        ("maintainer_department_id", maintainer_department_id),
    ):
        if dept_id is not None and session.get(Department, dept_id) is None:
            raise ValidationFailed(f"department {dept_id} does not exist", field=field_name)
    if session.get(Component, full) is not None:
        raise ValidationFailed(f"component {full} is already registered", field="identifier")
    component = Component(
        identifier=full,
        legacy_identifier=legacy,
        class_code=problem_class.code,
        name=name or problem_class.name,
        lon=lon,
        lat=lat,
        unit_grid=unit_grid,
        managing_department_id=managing_department_id,
        owner_department_id=owner_department_id,
        maintainer_department_id=maintainer_department_id,
        responsible_person=responsible_person,
        phone=phone,
        status=status,
    )
    session.add(component)
    session.flush()
    return component


def get_component(session: Session, identifier: str) -> Component:
    component = session.get(Component, identifier)
    if component is None:
        component = session.scalar(
            select(Component).where(Component.legacy_identifier == identifier)
        )
    if component is None:
        raise NotFound(f"component {identifier} is not registered")
    return component


def next_identifier(session: Session, division: str, class_code: str) -> str:
    prefix = division + class_code
    count = session.scalar(
        select(func.count()).select_from(Component).where(Component.identifier.startswith(prefix))
    )
    return f"{prefix}{(count or 0) + 1:06d}"
