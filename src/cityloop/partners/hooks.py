"""The one call `cases.service.transition()` makes into this package.

It must cost nothing for ordinary cases: one attribute test, no query, no import of the
partner services (which sit above `cases` and would make an import cycle at load time).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cityloop.cases.models import Case

# The sources a partner's key reports under (a subset of intake.service.SOURCES); a partner
# row can only be created with one of these, so every partner-born case carries one.
PARTNER_SOURCES = frozenset({"partner_12345", "partner_110", "public_safety", "open311"})


def case_changed(
    session: Session,
    case: Case,
    action: str,
    from_state: str | None,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Queue a status push to the partner a case came from, if it has a webhook."""
    if case.source not in PARTNER_SOURCES:
        return
    from cityloop.partners.service import push_status

    push_status(session, case, action, from_state, payload, now)
