"""Users, passwords, tokens, scopes and responsibility, and the administrator's edits of
departments, users and responsibility rules. Services flush; the caller commits."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Select, String, bindparam, or_, select
from sqlalchemy.orm import Session

from cityloop.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from cityloop.org.keyring import Keyring, SigningKey
from cityloop.org.models import Department, ResponsibilityRule, User
from cityloop.places.service import place_exists
from cityloop.taxonomy.service import list_classes

ROLES: dict[str, str] = {
    "admin": "系统管理员",
    "operator": "受理员",
    "shiftlead": "值班长",
    "dispatcher": "派遣员",
    "inspector": "监督员",
    "handler": "专业部门处置人员",
    "leader": "领导",
    "officer": "执法队员",
    "legal_reviewer": "法制审核员",
    "enforcement_chief": "执法负责人",
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
    """A new user; a handler needs a department, an inspector the grids it patrols."""
    username = username.strip() if isinstance(username, str) else ""
    if not USERNAME.match(username):
        raise ValidationFailed(
            "username has 2 to 40 letters, digits, '.', '_' or '-'", field="username"
        )
    display_name = _text(display_name, "display_name", 60)
    if role not in ROLES:
        raise ValidationFailed(f"unknown role {role!r}", field="role")
    if password_hash is None:
        _password(password)
    department = (
        get_department(session, department_id).id if department_id not in (None, "") else None
    )
    grids = _grid_codes(session, list(grid_codes or []))
    checked_phone = _phone(phone)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ValidationFailed(f"username {username!r} is taken", field="username")
    user = User(
        username=username,
        display_name=display_name,
        password_hash=password_hash or hash_password(password),
        role=role,
        department_id=department,
        grid_codes=grids,
        phone=checked_phone,
        active=True,
    )
    _check_user_shape(user)
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
    # The user's token generation when it was signed: a password change, a lock, a role
    # change or a deactivation moves the user's on, and every older token stops working.
    generation: int
    kid: str


def issue_token(
    user: User, key: str | SigningKey, minutes: int, now: datetime | None = None
) -> str:
    signing = key if isinstance(key, SigningKey) else SigningKey(key)
    issued = now or datetime.now(UTC)
    payload = {
        "sub": str(user.id),
        "role": user.role,
        "gen": user.token_generation or 0,
        "exp": issued + timedelta(minutes=minutes),
    }
    return jwt.encode(payload, signing.secret, algorithm="HS256", headers={"kid": signing.kid})


def read_token(token: str, keyring: Keyring) -> TokenClaims:
    now = datetime.now(UTC)
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid or expired token") from exc
    # A retired key ("until=" passed) or one no longer listed finds nothing here.
    key = keyring.by_kid(kid, now) if isinstance(kid, str) else None
    if key is None:
        raise Unauthorized("invalid or expired token")
    claims = _verified_claims(token, key.secret)
    if claims.expires_at <= now:
        raise Unauthorized("invalid or expired token")
    return claims


def check_generation(user: User, claims: TokenClaims) -> bool:
    return claims.generation == (user.token_generation or 0)


def revoke_tokens(user: User) -> None:
    """End every token and console session the user holds now."""
    user.token_generation = (user.token_generation or 0) + 1


@lru_cache(maxsize=4096)
def _verified_claims(token: str, secret: str) -> TokenClaims:
    # A token's claims never change once signed, so its signature is checked once per process
    # (4 % of an inspector's report went to it); its expiry, key and generation on every
    # request. A refused token raises, and is not remembered.
    try:
        payload = jwt.decode(token, secret, algorithms=["HS256"])
        return TokenClaims(
            user_id=int(payload["sub"]),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
            generation=int(payload["gen"]),
            kid=str(jwt.get_unverified_header(token)["kid"]),
        )
    except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
        raise Unauthorized("invalid or expired token") from exc


def get_department(
    session: Session, department_id: int, *, field: str = "department_id"
) -> Department:
    if isinstance(department_id, bool) or not isinstance(department_id, int):
        raise ValidationFailed(f"{field} must be a department id", field=field)
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


class RuleChoice(NamedTuple):
    """What the winning responsibility rule says: who, and whether to dispatch at once."""

    department_id: int
    auto_dispatch: bool
    class_prefix: str
    region_prefix: str


@lru_cache(maxsize=8)
def _candidate_rules(places: int) -> Select[int, bool, str, str]:
    # Built once per number of place levels (five for a case in a unit grid): built anew for
    # every auto-routed report, the expression cost more than the query (py-spy, bench_intake).
    prefix = ResponsibilityRule.region_prefix
    return select(
        ResponsibilityRule.department_id,
        ResponsibilityRule.auto_dispatch,
        ResponsibilityRule.class_prefix,
        prefix,
    ).where(
        bindparam("class_code", type_=String).like(ResponsibilityRule.class_prefix + "%"),
        or_(
            prefix == "",
            *(bindparam(f"place{i}", type_=String).like(prefix + "%") for i in range(places)),
        ),
    )


def responsible_rule(
    session: Session, class_code: str, region_codes: list[str]
) -> RuleChoice | None:
    """The most specific rule for a class in a place: longest class prefix, then longest
    region prefix."""
    # Only the rules that can match are read: their class prefix begins the class code and
    # their region prefix (if any) begins one of the case's places.
    parameters = {f"place{i}": code for i, code in enumerate(region_codes)}
    parameters["class_code"] = class_code
    best: tuple[int, int] | None = None
    best_rule: RuleChoice | None = None
    for row in session.execute(_candidate_rules(len(region_codes)), parameters):
        rule = RuleChoice._make(row)
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


# -- administration: departments ---------------------------------------------------------------
DEPARTMENT_KINDS: dict[str, str] = {
    "centre": "监督指挥中心",
    "district_office": "区城管办",
    "street_office": "街道办事处",
    "community": "社区居委会",
    "professional": "专业部门",
    "utility": "公用事业单位",
    "enforcement": "执法部门",
}
DEPARTMENT_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,39}$")
PHONE = re.compile(r"^[0-9+][0-9 -]{2,29}$")
CLASS_PREFIX = re.compile(r"^[0-9]{0,8}$")
MIN_PASSWORD = 8


def _text(value: Any, field: str, limit: int, *, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise ValidationFailed(f"{field} must not be empty", field=field)
    if len(text) > limit:
        raise ValidationFailed(f"{field} has at most {limit} characters", field=field)
    return text


def _phone(value: Any) -> str | None:
    text = _text(value, "phone", 30, required=False)
    if text and not PHONE.match(text):
        raise ValidationFailed("phone holds digits, spaces, '-' or a leading '+'", field="phone")
    return text or None


def _region(session: Session, code: Any, field: str) -> str | None:
    text = _text(code, field, 20, required=False)
    if text and not place_exists(session, text):
        raise ValidationFailed(f"{text} is not a region or unit grid of this city", field=field)
    return text or None


def list_departments(session: Session) -> list[Department]:
    return list(session.scalars(select(Department).order_by(Department.code)))


def department_tree(session: Session) -> list[tuple[Department, int]]:
    """Every department with its depth, parents before their children (a tree read top down)."""
    rows = list_departments(session)
    children: dict[int | None, list[Department]] = {}
    known = {d.id for d in rows}
    for dept in rows:
        parent = dept.parent_id if dept.parent_id in known else None
        children.setdefault(parent, []).append(dept)
    ordered: list[tuple[Department, int]] = []
    stack = [(d, 0) for d in reversed(children.get(None, []))]
    seen: set[int] = set()
    while stack:
        dept, depth = stack.pop()
        if dept.id in seen:
            continue
        seen.add(dept.id)
        ordered.append((dept, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(dept.id, [])))
    return ordered


def _parent(session: Session, parent_id: Any) -> int | None:
    if parent_id is None or parent_id == "":
        return None
    if isinstance(parent_id, bool) or not isinstance(parent_id, int):
        raise ValidationFailed("parent_id must be a department id", field="parent_id")
    return get_department(session, parent_id, field="parent_id").id


def create_department(
    session: Session,
    *,
    code: str,
    name: str,
    kind: str,
    parent_id: int | None = None,
    region_code: str | None = None,
    phone: str | None = None,
) -> Department:
    """A new department under `parent_id` (none: a top-level unit)."""
    code = code.strip() if isinstance(code, str) else ""
    if not DEPARTMENT_CODE.match(code):
        raise ValidationFailed(
            "code has 1 to 40 letters, digits, '-' or '_' (e.g. D-350203011)", field="code"
        )
    name = _text(name, "name", 80)
    if kind not in DEPARTMENT_KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(DEPARTMENT_KINDS)}", field="kind")
    parent = _parent(session, parent_id)
    region = _region(session, region_code, "region_code")
    checked_phone = _phone(phone)
    if session.scalar(select(Department.id).where(Department.code == code)) is not None:
        raise Conflict(f"a department with code {code} exists already", field="code")
    department = Department(
        code=code,
        name=name,
        kind=kind,
        parent_id=parent,
        region_code=region,
        phone=checked_phone,
    )
    session.add(department)
    session.flush()
    return department


def update_department(
    session: Session, department_id: int, changes: Mapping[str, Any]
) -> Department:
    """Rename, re-kind, move under another parent (never under itself or its own sub-units),
    change its region or phone."""
    department = session.get(Department, department_id)
    if department is None:
        raise NotFound(f"department {department_id} not found")
    for name, value in changes.items():
        if name == "name":
            department.name = _text(value, "name", 80)
        elif name == "kind":
            if value not in DEPARTMENT_KINDS:
                raise ValidationFailed(
                    f"kind must be one of {', '.join(DEPARTMENT_KINDS)}", field="kind"
                )
            department.kind = value
        elif name == "parent_id":
            parent = _parent(session, value)
            if parent is not None and parent in descendant_ids(session, department.id):
                raise ValidationFailed(
                    "a department cannot move under itself or one of its own sub-units",
                    field="parent_id",
                )
            department.parent_id = parent
        elif name == "region_code":
            department.region_code = _region(session, value, "region_code")
        elif name == "phone":
            department.phone = _phone(value)
        else:
            raise ValidationFailed(f"{name} cannot be changed", field=name)
    session.flush()
    return department


# -- administration: users ---------------------------------------------------------------------
def _password(password: Any) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD or len(password) > 128:
        raise ValidationFailed(f"a password has {MIN_PASSWORD} to 128 characters", field="password")
    return password


def _grid_codes(session: Session, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,，;；]+", value) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed("grid_codes is a list of region codes", field="grid_codes")
    codes = list(dict.fromkeys(v.strip() for v in value if v.strip()))
    if len(codes) > 50:
        raise ValidationFailed("at most 50 grid codes", field="grid_codes")
    for code in codes:
        if not place_exists(session, code):
            raise ValidationFailed(
                f"{code} is not a region or unit grid of this city", field="grid_codes"
            )
    return codes


def _check_user_shape(user: User) -> None:
    """What each role needs to work at all: a handler sees its department's cases, an
    inspector the cases of the grids it patrols."""
    if user.role == "handler" and user.department_id is None:
        raise ValidationFailed("a handler belongs to a department", field="department_id")
    if user.role == "inspector" and not user.grid_codes:
        raise ValidationFailed("an inspector patrols at least one grid", field="grid_codes")


def _active_admins(session: Session) -> int:
    return len(list(session.scalars(select(User.id).where(User.role == "admin", User.active))))


def list_users(session: Session, *, role: str | None = None, q: str = "") -> list[User]:
    query = select(User).order_by(User.username)
    if role:
        query = query.where(User.role == role)
    wanted = q.strip()
    if wanted:
        pattern = f"%{wanted}%"
        query = query.where(User.username.ilike(pattern) | User.display_name.ilike(pattern))
    return list(session.scalars(query))


def update_user(
    session: Session, user_id: int, changes: Mapping[str, Any], *, by: int | None = None
) -> User:
    """Change a user's name, role, department, grids, phone, or disable/enable them. The last
    active administrator can be neither disabled nor given another role, and an administrator
    (`by`) cannot lock themselves out."""
    user = require_user(session, user_id)
    if by == user.id and (
        changes.get("active") is False or changes.get("role", "admin") != "admin"
    ):
        field = "active" if changes.get("active") is False else "role"
        raise ValidationFailed("you cannot disable yourself or give up your own role", field=field)
    was_admin = user.role == "admin" and user.active
    for name, value in changes.items():
        if name == "display_name":
            user.display_name = _text(value, "display_name", 60)
        elif name == "role":
            if value not in ROLES:
                raise ValidationFailed(f"unknown role {value!r}", field="role")
            if value != user.role:
                revoke_tokens(user)
            user.role = value
        elif name == "department_id":
            department_id = (
                None
                if value is None or value == ""
                else get_department(session, value, field="department_id").id
            )
            if department_id != user.department_id:
                revoke_tokens(user)  # a token must not keep the scope of the old office
            user.department_id = department_id
        elif name == "grid_codes":
            user.grid_codes = _grid_codes(session, value)
        elif name == "phone":
            user.phone = _phone(value)
        elif name == "active":
            if not isinstance(value, bool):
                raise ValidationFailed("active must be true or false", field="active")
            if not value:
                revoke_tokens(user)
            user.active = value
        else:
            raise ValidationFailed(f"{name} cannot be changed", field=name)
    _check_user_shape(user)
    if was_admin and not (user.role == "admin" and user.active):
        session.flush()
        if _active_admins(session) == 0:
            field = "active" if not user.active else "role"
            raise ValidationFailed("the last active administrator must stay one", field=field)
    session.flush()
    return user


def change_own_password(session: Session, user: User, current: str, new: str) -> User:
    """A user's own change: the current password first, then every older token ends."""
    ok: bool
    try:
        ok = _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        raise ValidationFailed("the current password is wrong", field="current_password")
    user.password_hash = hash_password(_password(new))
    revoke_tokens(user)
    session.flush()
    return user


def reset_password(session: Session, user_id: int, password: str) -> User:
    user = require_user(session, user_id)
    user.password_hash = hash_password(_password(password))
    revoke_tokens(user)
    session.flush()
    return user


# -- administration: responsibility rules -----------------------------------------------------
def list_rules(session: Session) -> list[ResponsibilityRule]:
    return list(
        session.scalars(
            select(ResponsibilityRule).order_by(
                ResponsibilityRule.class_prefix,
                ResponsibilityRule.region_prefix,
                ResponsibilityRule.id,
            )
        )
    )


def get_rule(session: Session, rule_id: int) -> ResponsibilityRule:
    rule = session.get(ResponsibilityRule, rule_id)
    if rule is None:
        raise NotFound(f"responsibility rule {rule_id} not found")
    return rule


def _class_prefix(session: Session, value: Any) -> str:
    prefix = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        raise ValidationFailed("class_prefix is a string of digits", field="class_prefix")
    if not CLASS_PREFIX.match(prefix):
        raise ValidationFailed(
            "class_prefix has up to 8 digits (empty: every class)", field="class_prefix"
        )
    if prefix and not any(c.code.startswith(prefix) for c in list_classes(session)):
        raise ValidationFailed(f"no problem class starts with {prefix}", field="class_prefix")
    return prefix


def _check_rule(session: Session, rule: ResponsibilityRule) -> None:
    clash = session.scalar(
        select(ResponsibilityRule.id).where(
            ResponsibilityRule.class_prefix == rule.class_prefix,
            ResponsibilityRule.region_prefix == rule.region_prefix,
            ResponsibilityRule.id != (rule.id or 0),
        )
    )
    if clash is not None:
        # Two rules equally specific would leave the choice to table order.
        raise Conflict(
            f"rule {clash} covers the same class and region already; edit that one",
            field="class_prefix",
        )


def create_rule(
    session: Session,
    *,
    class_prefix: str,
    region_prefix: str,
    department_id: int,
    auto_dispatch: bool = False,
    note: str = "",
) -> ResponsibilityRule:
    """Who handles a class (prefix) in a place (prefix); `auto_dispatch` sends trusted
    reports straight to the department (直接派遣)."""
    if not isinstance(auto_dispatch, bool):
        raise ValidationFailed("auto_dispatch must be true or false", field="auto_dispatch")
    rule = ResponsibilityRule(
        class_prefix=_class_prefix(session, class_prefix),
        region_prefix=_region(session, region_prefix, "region_prefix") or "",
        department_id=get_department(session, department_id).id,
        auto_dispatch=auto_dispatch,
        note=_text(note, "note", 200, required=False),
    )
    _check_rule(session, rule)
    session.add(rule)
    session.flush()
    return rule


def update_rule(session: Session, rule_id: int, changes: Mapping[str, Any]) -> ResponsibilityRule:
    rule = get_rule(session, rule_id)
    for name, value in changes.items():
        if name == "class_prefix":
            rule.class_prefix = _class_prefix(session, value)
        elif name == "region_prefix":
            rule.region_prefix = _region(session, value, "region_prefix") or ""
        elif name == "department_id":
            rule.department_id = get_department(session, value).id
        elif name == "auto_dispatch":
            if not isinstance(value, bool):
                raise ValidationFailed("auto_dispatch must be true or false", field="auto_dispatch")
            rule.auto_dispatch = value
        elif name == "note":
            rule.note = _text(value, "note", 200, required=False)
        else:
            raise ValidationFailed(f"{name} cannot be changed", field=name)
    _check_rule(session, rule)
    session.flush()
    return rule


def delete_rule(session: Session, rule_id: int) -> None:
    session.delete(get_rule(session, rule_id))
    session.flush()
