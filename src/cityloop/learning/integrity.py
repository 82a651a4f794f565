"""Integrity of what inspectors and citizens send, and the random re-check draw (抽查).

The worker scans the timeline for events carrying photos (reports, results, checks) and
flags, on the case:
- `reused_photo`: a photo whose perceptual hash (pHash, 64 bits) is within a few bits of a
  photo already used on another case: a re-encoded, resized or recompressed copy is caught,
  not only the same bytes;
- `exif_time_far` / `exif_place_far`: the camera's time or GPS far from the event's time or
  the case's place;
- `check_off_track`: a check while the inspector's GPS track (the app's positions) was not
  within 200 m of the case;
- `photo_before_result`: a check whose photo was taken before the result it checks was
  submitted (a check staged with an old photo).
Flags name the user who sent the photo and their department, for the shift leader's list
and the evaluation's counts (`flag_counts`)."""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case, CaseEvent
from cityloop.errors import NotFound
from cityloop.intake.models import InspectorPosition
from cityloop.kit.geo import haversine_m
from cityloop.learning.models import IntegrityFlag, PhotoHash, Recheck
from cityloop.media.models import Media
from cityloop.media.service import read_media
from cityloop.org.models import User
from cityloop.storage.base import StorageUnavailable

REUSE_MAX_BITS = 6  # of 64: a copy re-encoded or scaled differs by 0–4 bits
EXIF_TIME_TOLERANCE = timedelta(hours=12)
EXIF_DISTANCE_M = 500.0
CHECK_ACTIONS = frozenset({"report_check"})
# A check is made on the spot: the inspector's track (intake.InspectorPosition) within 15 min
# of it must come within 200 m of the case.
TRACK_WINDOW = timedelta(minutes=15)
TRACK_DISTANCE_M = 200.0
RESULT_ACTIONS = frozenset({"submit_result"})
FLAG_LABELS = {
    "reused_photo": "照片重复使用",
    "exif_time_far": "照片拍摄时间与上报时间不符",
    "exif_place_far": "照片拍摄位置与案件位置不符",
    "photo_before_result": "核查照片早于处置结果",
    "check_off_track": "核查时监督员轨迹不在现场",
}


def phash_bytes(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        return str(imagehash.phash(image))


def _bits(value: str) -> int:
    return int(value, 16)


@dataclass
class ScanResult:
    events: int = 0
    photos: int = 0
    flags: int = 0
    last_event_id: int = 0


def _cursor(session: Session) -> int:
    return session.scalar(select(func.max(PhotoHash.event_id))) or 0


def scan(session: Session, *, media_dir: Path, now: datetime, limit: int = 2000) -> ScanResult:
    """Check the photos of the events written since the last scan (the newest event a photo
    hash records is the cursor)."""
    result = ScanResult(last_event_id=_cursor(session))
    events = session.scalars(
        select(CaseEvent)
        .where(CaseEvent.id > result.last_event_id)
        .order_by(CaseEvent.id)
        .limit(limit)
    ).all()
    known = session.execute(select(PhotoHash.phash, PhotoHash.case_id)).all()
    hashes = np.array([_bits(h) for h, _ in known], dtype=np.uint64)
    cases_of = [c for _, c in known]
    for event in events:
        result.events += 1
        if not event.photos:
            continue
        case = session.get(Case, event.case_id)
        assert case is not None
        for media_id in event.photos:
            media = session.get(Media, str(media_id))
            if media is None or media.kind != "photo":
                continue
            try:
                value = phash_bytes(read_media(media_dir, media))
            except (OSError, NotFound, StorageUnavailable):
                continue  # a missing or unreadable file is no evidence either way
            result.photos += 1
            flags = _checks(session, event, case, media, value, hashes, cases_of)
            for kind, detail in flags:
                _flag(session, case, event, media.id, kind, detail, now)
                result.flags += 1
            session.add(
                PhotoHash(
                    media_id=media.id,
                    case_id=case.id,
                    phash=value,
                    used_at=event.at,
                    event_id=event.id,
                )
            )
            hashes = np.append(hashes, np.uint64(_bits(value)))
            cases_of.append(case.id)
        session.flush()
    if events:
        result.last_event_id = events[-1].id
    return result


def _checks(
    session: Session,
    event: CaseEvent,
    case: Case,
    media: Media,
    value: str,
    hashes: np.ndarray,
    cases_of: Sequence[int],
) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if len(hashes):
        distance = _popcount(hashes ^ np.uint64(_bits(value)))
        close = [
            (int(d), cases_of[i])
            for i, d in enumerate(distance)
            if d <= REUSE_MAX_BITS and cases_of[i] != case.id
        ]
        if close:
            bits, other = min(close)
            ticket = session.scalar(select(Case.ticket).where(Case.id == other))
            found.append(("reused_photo", {"other_case": ticket, "bits": bits}))
    if media.taken_at is not None:
        gap = abs(event.at - media.taken_at)
        if gap > EXIF_TIME_TOLERANCE and event.action not in CHECK_ACTIONS:
            found.append(
                (
                    "exif_time_far",
                    {
                        "taken_at": media.taken_at.isoformat(),
                        "hours": round(gap.total_seconds() / 3600, 1),
                    },
                )
            )
    if media.exif_lon is not None and media.exif_lat is not None:
        metres = haversine_m(case.lon, case.lat, media.exif_lon, media.exif_lat)
        if metres > EXIF_DISTANCE_M:
            found.append(("exif_place_far", {"metres": round(metres)}))
    if event.action in CHECK_ACTIONS and media.taken_at is not None:
        submitted = session.scalar(
            select(func.max(CaseEvent.at)).where(
                CaseEvent.case_id == case.id,
                CaseEvent.action.in_(RESULT_ACTIONS),
                CaseEvent.id < event.id,
            )
        )
        if submitted is not None and media.taken_at < submitted:
            found.append(
                (
                    "photo_before_result",
                    {"taken_at": media.taken_at.isoformat(), "result_at": submitted.isoformat()},
                )
            )
    if event.action in CHECK_ACTIONS and event.actor_id is not None:
        nearest = _track_distance(session, event.actor_id, event.at, case.lon, case.lat)
        if nearest is not None and nearest > TRACK_DISTANCE_M:
            found.append(("check_off_track", {"metres": round(nearest)}))
    return found


def _track_distance(
    session: Session, user_id: int, at: datetime, lon: float, lat: float
) -> float | None:
    """How near the inspector's phone came to the case around the check (None: no track)."""
    points = session.execute(
        select(InspectorPosition.lon, InspectorPosition.lat).where(
            InspectorPosition.user_id == user_id,
            InspectorPosition.at >= at - TRACK_WINDOW,
            InspectorPosition.at <= at + TRACK_WINDOW,
        )
    ).all()
    if not points:
        return None
    return min(haversine_m(lon, lat, p_lon, p_lat) for p_lon, p_lat in points)


def _popcount(values: np.ndarray) -> np.ndarray:
    return np.array([bin(int(v)).count("1") for v in values])


def _flag(
    session: Session,
    case: Case,
    event: CaseEvent,
    media_id: str,
    kind: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    department = None
    if event.actor_id is not None:
        department = session.scalar(select(User.department_id).where(User.id == event.actor_id))
    session.add(
        IntegrityFlag(
            case_id=case.id,
            kind=kind,
            media_id=media_id,
            user_id=event.actor_id,
            department_id=department,
            detail={**detail, "action": event.action},
            created_at=now,
        )
    )


def flags(session: Session, *, since: datetime, limit: int = 200) -> list[IntegrityFlag]:
    """The shift leader's list: the newest flags first."""
    return list(
        session.scalars(
            select(IntegrityFlag)
            .where(IntegrityFlag.created_at >= since)
            .order_by(IntegrityFlag.created_at.desc(), IntegrityFlag.id.desc())
            .limit(limit)
        )
    )


def flag_counts(session: Session, *, since: datetime, until: datetime) -> dict[str, Any]:
    """Flags per user and per department in a period (for the evaluation)."""
    window = (IntegrityFlag.created_at >= since, IntegrityFlag.created_at < until)
    by_user = session.execute(
        select(IntegrityFlag.user_id, func.count()).where(*window).group_by(IntegrityFlag.user_id)
    ).all()
    by_department = session.execute(
        select(IntegrityFlag.department_id, func.count())
        .where(*window)
        .group_by(IntegrityFlag.department_id)
    ).all()
    return {
        "users": {uid: n for uid, n in by_user if uid is not None},
        "departments": {did: n for did, n in by_department if did is not None},
    }


# -- the random re-check draw (抽查) ----------------------------------------------------------
RECHECK_SHARE = 0.05


def draw_rechecks(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    share: float = RECHECK_SHARE,
    rng: random.Random | None = None,
    now: datetime,
) -> list[Recheck]:
    """Draw `share` of the cases closed in [since, until) not drawn before, each given to an
    inspector other than the one who checked it (chosen at random among the others)."""
    if not 0 <= share <= 1:
        raise ValueError("share must be between 0 and 1")
    rng = rng or random.SystemRandom()
    closed = session.scalars(
        select(Case.id)
        .where(Case.closed_at >= since, Case.closed_at < until)
        .where(Case.id.not_in(select(Recheck.case_id)))
        .order_by(Case.id)
    ).all()
    inspectors = session.scalars(
        select(User.id).where(User.role == "inspector", User.active.is_(True)).order_by(User.id)
    ).all()
    drawn = [case_id for case_id in closed if rng.random() < share]
    rows = []
    for case_id in drawn:
        checker = session.scalar(
            select(CaseEvent.actor_id)
            .where(CaseEvent.case_id == case_id, CaseEvent.action.in_(CHECK_ACTIONS))
            .order_by(CaseEvent.seq.desc())
            .limit(1)
        )
        others = [i for i in inspectors if i != checker]
        row = Recheck(
            case_id=case_id, drawn_at=now, inspector_id=rng.choice(others) if others else None
        )
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def draw_due(session: Session, *, now: datetime) -> list[Recheck]:
    """The worker's draw: the cases closed on the days before today not drawn yet (the
    newest draw marks where the last one ended; the first draw looks back a week)."""
    last = session.scalar(select(func.max(Recheck.drawn_at)))
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    since = (
        last.replace(hour=0, minute=0, second=0, microsecond=0)
        if last
        else day_start - timedelta(days=7)
    )
    if since >= day_start:
        return []
    return draw_rechecks(session, since=since, until=day_start, now=now)


def open_rechecks(session: Session, *, inspector_id: int | None) -> list[Recheck]:
    query = select(Recheck).where(Recheck.outcome.is_(None))
    if inspector_id is not None:
        query = query.where(Recheck.inspector_id == inspector_id)
    return list(session.scalars(query.order_by(Recheck.drawn_at, Recheck.id).limit(500)))


def get_recheck(session: Session, recheck_id: int) -> Recheck:
    from cityloop.errors import NotFound

    row = session.get(Recheck, recheck_id)
    if row is None:
        raise NotFound(f"re-check {recheck_id} not found")
    return row


def record_recheck(
    session: Session, recheck_id: int, *, outcome: str, note: str, now: datetime
) -> Recheck:
    from cityloop.errors import Conflict, NotFound, ValidationFailed

    if outcome not in ("confirmed", "failed"):
        raise ValidationFailed("outcome must be confirmed or failed", field="outcome")
    row = session.get(Recheck, recheck_id, with_for_update=True)
    if row is None:
        raise NotFound(f"re-check {recheck_id} not found")
    if row.outcome is not None:
        raise Conflict(f"re-check {recheck_id} already has its outcome ({row.outcome})")
    row.outcome, row.note, row.recorded_at = outcome, note, now
    session.flush()
    return row
