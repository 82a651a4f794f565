"""Users, passwords, tokens, scopes and responsibility. Services flush; the caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.errors import NotFound, Unauthorized, ValidationFailed
from cityloop.org.models import Department, ResponsibilityRule, User

ROLES: dict[str, str] = {
    "admin": "系统管理员",
    "operator": "受理员",
    "shiftlead": "值班长",
    "dispatcher": "派遣员",
    "inspector": "监督员",
    "handler": "专业部门处置人员",
    "leader": "领导",
}

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str,
    display_name: str,
    department_id: int | None = None,
    grid_codes: list[str] | None = None,
    phone: str | None = None,
    password_hash: str | None = None,
) -> User:
    if role not in ROLES:
        raise ValidationFailed(f"unknown role {role!r}", field="role")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValidationFailed(f"username {username!r} is taken", field="username")
    user = User(
        username=username,
        display_name=display_name,
        password_hash=password_hash or hash_password(password),
        role=role,
        department_id=department_id,
        grid_codes=list(grid_codes or []),
        phone=phone,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    # Hash even for unknown users so response time does not reveal which names exist.
    candidate = user.password_hash if user is not None else _DUMMY_HASH
    ok: bool
    try:
        ok = _hasher.verify(candidate, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if user is None or not ok or not user.active:
        raise Unauthorized("wrong username or password")
    return user


_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    expires_at: datetime


def issue_token(user: User, secret: str, minutes: int, now: datetime | None = None) -> str:
    issued = now or datetime.now(UTC)
    payload = {"sub": str(user.id), "role": user.role, "exp": issued + timedelta(minutes=minutes)}
    return jwt.encode(payload, secret, algorithm="HS256")


def read_token(token: str, secret: str) -> TokenClaims:
    try:
        payload = jwt.decode(token, secret, algorithms=["HS256"])
        return TokenClaims(
            user_id=int(payload["sub"]),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise Unauthorized("invalid or expired token") from exc


def get_department(
    session: Session, department_id: int, *, field: str = "department_id"
) -> Department:
    department = session.get(Department, department_id)
    if department is None:
        raise ValidationFailed(f"department {department_id} does not exist", field=field)
    return department


def department_ancestry(session: Session, department_id: int) -> list[int]:
    """The department and every department above it, nearest first."""
    chain: list[int] = []
    current: int | None = department_id
    while current is not None and current not in chain:
        chain.append(current)
        current = session.scalar(select(Department.parent_id).where(Department.id == current))
    return chain


def descendant_ids(session: Session, department_id: int) -> set[int]:
    rows = session.execute(select(Department.id, Department.parent_id)).all()
    children: dict[int, list[int]] = {}
    for dept_id, parent_id in rows:
        if parent_id is not None:
            children.setdefault(parent_id, []).append(dept_id)
    found = {department_id}
    stack = [department_id]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def responsible_department(
    session: Session, class_code: str, region_codes: list[str]
) -> Department | None:
    """The department the rules name for a class in a place (most specific rule wins).

    `region_codes` are the case's place codes from coarse to fine (district … unit grid)."""
    rule = responsible_rule(session, class_code, region_codes)
    return session.get(Department, rule.department_id) if rule is not None else None


def responsible_rule(
    session: Session, class_code: str, region_codes: list[str]
) -> ResponsibilityRule | None:
    """The most specific rule for a class in a place: longest class prefix, then longest
    region prefix."""
    rules = session.scalars(select(ResponsibilityRule)).all()
    best: tuple[int, int] | None = None
    best_rule: ResponsibilityRule | None = None
    for rule in rules:
        if not class_code.startswith(rule.class_prefix):
            continue
        if rule.region_prefix and not any(
            code.startswith(rule.region_prefix) for code in region_codes
        ):
            continue
        score = (len(rule.class_prefix), len(rule.region_prefix))
        if best is None or score > best:
            best, best_rule = score, rule
    return best_rule


def require_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user
