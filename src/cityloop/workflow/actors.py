"""Who takes a step: a person with a role, department and grids, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cityloop.org.models import User


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    name: str
    role: str
    department_id: int | None = None
    grid_codes: tuple[str, ...] = ()

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(
            user.id, user.display_name, user.role, user.department_id, tuple(user.grid_codes or ())
        )


SYSTEM = Actor(None, "系统", "system")
PUBLIC = Actor(None, "公众", "public")
