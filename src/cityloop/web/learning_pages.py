"""Console pages of learning: the suggestions beside the registration form, and the page of
the model (live accuracy over 7 / 30 days and per class, versions with their held-out
figures), the integrity flags for the shift leader, the re-checks drawn and the early
warnings."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from cityloop.learning import integrity, service, warning
from cityloop.learning.models import LearnedModel, Recheck
from cityloop.web.page import FormDep, StaffPageDep

router = APIRouter()
REGISTERING = frozenset({"operator", "shiftlead"})
WATCHING = frozenset({"shiftlead", "leader", "dispatcher"})
MAX_SUGGEST_TEXT = 10_000


@router.post("/desk/accept/suggest")
def suggestions(page: StaffPageDep, form: FormDep) -> Response:
    """The fragment under the description: top-3 classes and departments (a click on a class
    chooses it in the form; the choice is recorded as accepted or overridden at registration)."""
    if not page.allowed(REGISTERING):
        return page.forbidden_role()
    if not page.csrf_ok(form):
        return page.csrf_refused()
    text = str(form.get("description") or "").strip()[:MAX_SUGGEST_TEXT]
    district = None
    try:
        lon, lat = float(str(form.get("lon"))), float(str(form.get("lat")))
        found = page.request.app.state.places().locate(lon, lat)
        district = found.district if found is not None else None
    except (TypeError, ValueError):
        pass
    result = service.suggest(page.db, text, district=district) if text else None
    if not text:
        return HTMLResponse("")
    return page.render("learning_suggestions.html", suggestion=result)


@router.get("/learning")
def learning_page(page: StaffPageDep) -> Response:
    if not page.allowed(WATCHING):
        return page.forbidden_role()
    db, now = page.db, page.now
    models = db.scalars(select(LearnedModel).order_by(LearnedModel.id.desc()).limit(10)).all()
    rechecks = db.scalars(
        select(Recheck).where(Recheck.outcome.is_(None)).order_by(Recheck.drawn_at.desc()).limit(50)
    ).all()
    return page.render(
        "learning.html",
        live=[service.live_accuracy(db, now=now, days=d) for d in (7, 30)],
        models=models,
        flags=integrity.flags(db, since=now - timedelta(days=30)),
        flag_labels=integrity.FLAG_LABELS,
        warnings=warning.recent(db, now=now),
        rechecks=rechecks,
    )
