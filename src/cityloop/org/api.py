"""REST edge of the organisation: tokens, the current user, departments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy import select

from cityloop.deps import SessionDep, UserDep
from cityloop.org import service
from cityloop.org.models import Department

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


@router.post("/auth/token", response_model=Token, summary="Log in (OAuth2 password) 登录")
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
) -> Token:
    user = service.authenticate(session, form.username, form.password)
    settings = request.app.state.settings
    # Tokens expire by the wall clock, whatever clock the case loop runs on.
    token = service.issue_token(user, settings.secret_key, settings.token_minutes)
    return Token(access_token=token, role=user.role, expires_in_minutes=settings.token_minutes)


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
