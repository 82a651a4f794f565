"""Which cases cite a stored photo or voice note, and so who may fetch it: the media edges ask
here before serving a file (issue 23: any logged-in user fetched any photo by its id)."""

from __future__ import annotations

from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case, CaseEvent
from cityloop.cases.service import Actor, can_see

# A photo is cited by a handful of events at most; a bound keeps a crafted id cheap.
_MAX_CITING = 20


def may_fetch_media(session: Session, actor: Actor, media_id: str, uploaded_by: int | None) -> bool:
    """The uploader, and whoever may see a case whose timeline cites the file (its photos, or
    a voice note in its payload)."""
    if actor.user_id is not None and actor.user_id == uploaded_by:
        return True
    quoted = f'"{media_id}"'
    citing = session.scalars(
        select(CaseEvent.case_id)
        .where(
            or_(
                cast(CaseEvent.photos, String).contains(quoted),
                cast(CaseEvent.payload, String).contains(quoted),
            )
        )
        .distinct()
        .limit(_MAX_CITING)
    ).all()
    for case_id in citing:
        case = session.get(Case, case_id)
        if case is not None and can_see(session, actor, case):
            return True
    return False
