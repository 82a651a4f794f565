"""REST edge of the organisation: tokens, the current user, departments; and for the
administrator: departments, users and responsibility rules (the console's admin pages call
the same service functions)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlalchemy import select

from cityloop.deps import NowDep, SessionDep, UserDep
from cityloop.errors import DomainError, Forbidden, ValidationFailed
from cityloop.kit.patch import Patch
from cityloop.org import service, throttle
from cityloop.org.models import Department, ResponsibilityRule, User

router = APIRouter(prefix="/api/v1", tags=["organisation 组织"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    role: str
    expires_in_minutes: int


class Me(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    role_label: str
    department_id: int | None
    grid_codes: list[str]


class DepartmentOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None
    region_code: str | None


@router.post(
    "/auth/token",
    response_model=Token,
    summary="Log in (OAuth2 password) 登录",
    responses={
        401: {"description": "wrong username or password"},
        423: {"description": "account locked after repeated failures (Retry-After)"},
        429: {"description": "too many failed logins for the account or address (Retry-After)"},
    },
)
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    now: NowDep,
) -> Token:
    settings = request.app.state.settings
    try:
        user = throttle.login(
            session,
            form.username,
            form.password,
            address=request.client.host if request.client else "unknown",
            now=now,
            policy=throttle.LoginPolicy.of(settings),
        )
    except DomainError:
        session.commit()  # the failed attempt counts although the request fails
        raise
    # Tokens expire by the wall clock, whatever clock the case loop runs on.
    token = service.issue_token(user, request.app.state.keyring.signing, settings.token_minutes)
    return Token(access_token=token, role=user.role, expires_in_minutes=settings.token_minutes)


class LockoutOut(BaseModel):
    user_id: int
    username: str
    display_name: str
    locked_until: datetime | None
    throttled_until: datetime | None
    failures: int


def _lock_admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only an administrator sees and lifts login locks")


@router.get(
    "/auth/lockouts",
    response_model=list[LockoutOut],
    summary="Accounts that cannot log in now 被锁定的账号 (admin)",
)
def list_lockouts(
    request: Request, session: SessionDep, user: UserDep, now: NowDep
) -> list[LockoutOut]:
    _lock_admin(user)
    policy = throttle.LoginPolicy.of(request.app.state.settings)
    return [LockoutOut(**vars(lock)) for lock in throttle.lockouts(session, now=now, policy=policy)]


@router.delete(
    "/auth/lockouts/{username}",
    response_model=Me,
    summary="Unlock an account 解除锁定 (admin)",
)
def unlock(username: Annotated[str, Path(max_length=40)], session: SessionDep, user: UserDep) -> Me:
    _lock_admin(user)
    return me(throttle.unlock(session, username))


@router.get("/me", response_model=Me, summary="Who am I 当前用户")
def me(user: UserDep) -> Me:
    return Me(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        role_label=service.ROLES[user.role],
        department_id=user.department_id,
        grid_codes=list(user.grid_codes or []),
    )


class OwnPasswordIn(BaseModel):
    current_password: str = Field(max_length=128)
    new_password: str = Field(max_length=128)


@router.post(
    "/me/password",
    response_model=Token,
    summary="Change my password 修改密码 (ends every other token and session)",
)
def change_password(
    request: Request, body: OwnPasswordIn, session: SessionDep, user: UserDep
) -> Token:
    try:
        service.change_own_password(session, user, body.current_password, body.new_password)
    except ValidationFailed as exc:
        if exc.field == "password":
            exc.field = "new_password"
        raise
    settings = request.app.state.settings
    token = service.issue_token(user, request.app.state.keyring.signing, settings.token_minutes)
    return Token(access_token=token, role=user.role, expires_in_minutes=settings.token_minutes)


@router.get("/departments", response_model=list[DepartmentOut], summary="Departments 部门")
def departments(session: SessionDep, user: UserDep) -> list[DepartmentOut]:
    rows = session.scalars(select(Department).order_by(Department.id))
    return [
        DepartmentOut(
            id=d.id,
            code=d.code,
            name=d.name,
            kind=d.kind,
            parent_id=d.parent_id,
            region_code=d.region_code,
        )
        for d in rows
    ]


# -- the administrator's edits -----------------------------------------------------------------
def _require_admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only an administrator manages departments, users and rules")


def _department_out(d: Department) -> DepartmentOut:
    return DepartmentOut(
        id=d.id,
        code=d.code,
        name=d.name,
        kind=d.kind,
        parent_id=d.parent_id,
        region_code=d.region_code,
    )


class DepartmentIn(BaseModel):
    code: str = Field(max_length=40, description="e.g. D-350203011")
    name: str = Field(max_length=80)
    kind: str = Field(description=", ".join(service.DEPARTMENT_KINDS))
    parent_id: int | None = None
    region_code: str | None = Field(default=None, max_length=20)
    phone: str | None = Field(default=None, max_length=30)


class DepartmentPatch(Patch):
    nullable = frozenset({"parent_id", "region_code", "phone"})

    name: str | None = Field(default=None, max_length=80)
    kind: str | None = None
    parent_id: int | None = Field(default=None, description="move under this department")
    region_code: str | None = Field(default=None, max_length=20)
    phone: str | None = Field(default=None, max_length=30)


@router.post(
    "/departments",
    response_model=DepartmentOut,
    status_code=201,
    summary="Add a department 新增部门 (admin)",
)
def create_department(body: DepartmentIn, session: SessionDep, user: UserDep) -> DepartmentOut:
    _require_admin(user)
    return _department_out(service.create_department(session, **body.model_dump()))


@router.patch(
    "/departments/{department_id}",
    response_model=DepartmentOut,
    summary="Rename or move a department 修改部门 (admin)",
)
def patch_department(
    department_id: int, body: DepartmentPatch, session: SessionDep, user: UserDep
) -> DepartmentOut:
    _require_admin(user)
    changes = body.model_dump(exclude_unset=True)
    return _department_out(service.update_department(session, department_id, changes))


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    department_id: int | None
    grid_codes: list[str]
    phone: str | None
    active: bool


class UserIn(BaseModel):
    username: str = Field(max_length=40)
    display_name: str = Field(max_length=60)
    role: str = Field(description=", ".join(service.ROLES))
    password: str = Field(max_length=128, description=f"at least {service.MIN_PASSWORD} characters")
    department_id: int | None = None
    grid_codes: list[str] = Field(default_factory=list, max_length=50)
    phone: str | None = Field(default=None, max_length=30)


class UserPatch(Patch):
    nullable = frozenset({"department_id", "phone"})

    display_name: str | None = Field(default=None, max_length=60)
    role: str | None = None
    department_id: int | None = None
    grid_codes: list[str] | None = Field(default=None, max_length=50)
    phone: str | None = Field(default=None, max_length=30)
    active: bool | None = Field(default=None, description="false: the user can no longer log in")


class PasswordIn(BaseModel):
    password: str = Field(max_length=128)


def _user_out(u: User) -> UserOut:
    return UserOut(
        id=u.id,
        username=u.username,
        display_name=u.display_name,
        role=u.role,
        department_id=u.department_id,
        grid_codes=list(u.grid_codes or []),
        phone=u.phone,
        active=u.active,
    )


@router.get("/users", response_model=list[UserOut], summary="Users 用户 (admin)")
def list_users(
    session: SessionDep, user: UserDep, role: str | None = None, q: str = ""
) -> list[UserOut]:
    _require_admin(user)
    return [_user_out(u) for u in service.list_users(session, role=role, q=q)]


@router.post("/users", response_model=UserOut, status_code=201, summary="Add a user 新增用户")
def create_user(body: UserIn, session: SessionDep, user: UserDep) -> UserOut:
    _require_admin(user)
    return _user_out(service.create_user(session, **body.model_dump()))


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    summary="Change or disable a user 修改/停用用户 (admin)",
)
def patch_user(user_id: int, body: UserPatch, session: SessionDep, user: UserDep) -> UserOut:
    _require_admin(user)
    changes = body.model_dump(exclude_unset=True)
    return _user_out(service.update_user(session, user_id, changes, by=user.id))


@router.post(
    "/users/{user_id}/password",
    response_model=UserOut,
    summary="Set a new password 重置密码 (admin)",
)
def set_password(user_id: int, body: PasswordIn, session: SessionDep, user: UserDep) -> UserOut:
    _require_admin(user)
    return _user_out(service.reset_password(session, user_id, body.password))


class RuleOut(BaseModel):
    id: int
    class_prefix: str
    region_prefix: str
    department_id: int
    auto_dispatch: bool
    note: str


class RuleIn(BaseModel):
    class_prefix: str = Field(default="", max_length=8, description="empty: every class")
    region_prefix: str = Field(default="", max_length=20, description="empty: the whole city")
    department_id: int
    auto_dispatch: bool = Field(
        default=False, description="trusted reports go straight to the department (直接派遣)"
    )
    note: str = Field(default="", max_length=200)


class RulePatch(Patch):
    class_prefix: str | None = Field(default=None, max_length=8)
    region_prefix: str | None = Field(default=None, max_length=20)
    department_id: int | None = None
    auto_dispatch: bool | None = None
    note: str | None = Field(default=None, max_length=200)


def _rule_out(rule: ResponsibilityRule) -> RuleOut:
    return RuleOut.model_validate(rule, from_attributes=True)


@router.get(
    "/responsibility-rules",
    response_model=list[RuleOut],
    summary="Responsibility rules 责任规则 (admin)",
)
def list_rules(session: SessionDep, user: UserDep) -> list[RuleOut]:
    _require_admin(user)
    return [_rule_out(r) for r in service.list_rules(session)]


@router.post(
    "/responsibility-rules",
    response_model=RuleOut,
    status_code=201,
    summary="Add a responsibility rule 新增责任规则 (admin)",
)
def create_rule(body: RuleIn, session: SessionDep, user: UserDep) -> RuleOut:
    _require_admin(user)
    return _rule_out(service.create_rule(session, **body.model_dump()))


@router.patch(
    "/responsibility-rules/{rule_id}",
    response_model=RuleOut,
    summary="Change a responsibility rule 修改责任规则 (admin)",
)
def patch_rule(rule_id: int, body: RulePatch, session: SessionDep, user: UserDep) -> RuleOut:
    _require_admin(user)
    changes = body.model_dump(exclude_unset=True)
    return _rule_out(service.update_rule(session, rule_id, changes))


@router.delete(
    "/responsibility-rules/{rule_id}",
    status_code=204,
    summary="Delete a responsibility rule 删除责任规则 (admin)",
)
def delete_rule(rule_id: int, session: SessionDep, user: UserDep) -> Response:
    _require_admin(user)
    service.delete_rule(session, rule_id)
    return Response(status_code=204)
