"""Importing history, training and keeping models, suggesting, and the live accuracy.

Services flush; the caller commits. The model in use is the newest active LearnedModel row,
loaded once per process and looked up again at most every 30 s (a retrain by the worker
reaches the servers within that)."""

from __future__ import annotations

import csv
import io
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from cityloop.cases.models import Case
from cityloop.errors import ValidationFailed
from cityloop.learning import suggester as ml
from cityloop.learning.models import (
    HistoryRecord,
    LearnedModel,
    PrefileSetting,
    SuggestionRecord,
)
from cityloop.org.models import Department
from cityloop.taxonomy.service import find_class, minor_class_names

CITY_TZ = ZoneInfo("Asia/Shanghai")
Progress = Callable[[str, int, int], None]
MIN_TRAINING_ROWS = 200
MIN_CLASSES = 2
HELD_OUT_SHARE = 0.2
# Cases the city closed itself teach the model too (their class and department are confirmed).
CLOSED_STATES = ("closed", "archived")
RETRAIN_AFTER = timedelta(days=7)
MAX_TEXT = 2000  # a suggestion reads the start of a long text; the rest changes nothing


# -- import-history ----------------------------------------------------------------------------
@dataclass
class ImportReport:
    imported: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)
    unknown_departments: dict[str, int] = field(default_factory=dict)
    created_departments: list[str] = field(default_factory=list)


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030, the two encodings old systems export."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationFailed("the file is neither UTF-8 nor GB18030 text", field="file")


def _parse_time(value: str) -> datetime:
    """An export's time; one without an offset is the city's local time."""
    text = value.strip().replace("/", "-")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"created_at {value!r} is not a date and time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=CITY_TZ)


def import_history(
    session: Session,
    data: bytes,
    *,
    batch: str,
    now: datetime,
    places: Any = None,
    create_departments: bool = False,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Rows of an old system's CSV export become HistoryRecords. A refused row (no text, an
    unknown class code, a date that does not parse, a broken position) is listed with its
    line number; unless `skip_bad`, any refusal imports nothing. Unknown departments are
    listed, or created (kind 'professional') with `create_departments`."""
    reader = csv.DictReader(io.StringIO(decode(data)))
    columns = [c.strip() for c in reader.fieldnames or []]
    if "text" not in columns:
        raise ValidationFailed("the file has no `text` column", field="text")
    classes = minor_class_names(session)
    by_code = {d.code: d for d in session.scalars(select(Department))}
    by_name = {d.name: d for d in by_code.values()}
    report = ImportReport()
    rows: list[dict[str, Any]] = []
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
    raw = list(reader)
    for number, line in enumerate(raw, start=2):
        line = {(k or "").strip(): (v or "").strip() for k, v in line.items()}
        try:
            row = _history_row(line, classes, places)
        except ValueError as exc:
            report.refused.append((number, str(exc)))
            continue
        department = line.get("department", "")
        if department:
            known = by_code.get(department) or by_name.get(department)
            if known is not None:
                row["department_id"] = known.id
            else:
                report.unknown_departments[department] = (
                    report.unknown_departments.get(department, 0) + 1
                )
                pending[department].append(row)
        row.update(batch=batch, imported_at=now)
        rows.append(row)
        if progress is not None and number % 500 == 0:
            progress("reading", number - 1, len(raw))
    if report.refused and not skip_bad:
        report.imported = 0
        return report
    if create_departments:
        for name, waiting in pending.items():
            dept = Department(code=f"H-{len(by_code) + 1:04d}", name=name, kind="professional")
            session.add(dept)
            session.flush()
            by_code[dept.code] = dept
            report.created_departments.append(name)
            for row in waiting:
                row["department_id"] = dept.id
    for start in range(0, len(rows), 1000):
        session.execute(insert(HistoryRecord), rows[start : start + 1000])
        if progress is not None:
            progress("storing", min(start + 1000, len(rows)), len(rows))
    session.flush()
    report.imported = len(rows)
    return report


def _history_row(line: dict[str, str], classes: dict[str, str], places: Any) -> dict[str, Any]:
    text = line.get("text", "")
    if not text:
        raise ValueError("text is empty")
    code = line.get("class_code", "") or None
    if code is not None and code not in classes:
        raise ValueError(f"class_code {code!r} is not a class of the taxonomy")
    created = _parse_time(line["created_at"]) if line.get("created_at") else None
    lon = lat = None
    if line.get("lon") or line.get("lat"):
        try:
            lon, lat = float(line["lon"]), float(line["lat"])
        except (KeyError, ValueError) as exc:
            raise ValueError("lon and lat must both be numbers") from exc
    district = street = None
    if lon is not None and lat is not None and places is not None:
        found = places.locate(lon, lat)
        if found is not None:
            district, street = found.district, found.street
    return {
        "text": text,
        "class_code": code,
        "department_id": None,
        "created_at": created,
        "lon": lon,
        "lat": lat,
        "district": district,
        "street": street,
        "source": line.get("source") or None,
    }


# -- learn -------------------------------------------------------------------------------------
@dataclass
class Examples:
    texts: list[str] = field(default_factory=list)
    districts: list[str | None] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    departments: list[str | None] = field(default_factory=list)

    def add(self, text: str, district: str | None, code: str, dept: str | None) -> None:
        self.texts.append(text[:MAX_TEXT])
        self.districts.append(district)
        self.classes.append(code)
        self.departments.append(dept)

    def take(self, rows: Sequence[int]) -> Examples:
        return Examples(
            [self.texts[i] for i in rows],
            [self.districts[i] for i in rows],
            [self.classes[i] for i in rows],
            [self.departments[i] for i in rows],
        )

    def __len__(self) -> int:
        return len(self.texts)


def training_examples(session: Session) -> Examples:
    """Imported history with a class, and the city's own closed cases (department by id)."""
    examples = Examples()
    for text, district, code, dept in session.execute(
        select(
            HistoryRecord.text,
            HistoryRecord.district,
            HistoryRecord.class_code,
            HistoryRecord.department_id,
        ).where(HistoryRecord.class_code.is_not(None))
    ):
        examples.add(text, district, str(code), str(dept) if dept else None)
    for text, district, code, dept in session.execute(
        select(Case.description, Case.district, Case.class_code, Case.department_id).where(
            Case.state.in_(CLOSED_STATES), Case.merged_into_id.is_(None)
        )
    ):
        examples.add(text, district, str(code), str(dept) if dept else None)
    return examples


def split(examples: Examples, seed: int = 18) -> tuple[Examples, Examples]:
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    cut = int(len(order) * (1 - HELD_OUT_SHARE))
    return examples.take(order[:cut]), examples.take(order[cut:])


def learn(session: Session, *, now: datetime, progress: Progress | None = None) -> LearnedModel:
    """Train on 80 % of what the city knows, measure on the other 20 %, then train on all of it
    and keep that model as the new active version with the held-out figures."""
    examples = training_examples(session)
    if len(examples) < MIN_TRAINING_ROWS or len(set(examples.classes)) < MIN_CLASSES:
        raise ValidationFailed(
            f"too little to learn from: {len(examples)} cases with a class in "
            f"{len(set(examples.classes))} classes (at least {MIN_TRAINING_ROWS} cases in "
            f"{MIN_CLASSES} classes); import the old system's history first "
            "(cityloop import-history)",
            field="history",
        )
    step = progress or (lambda _s, _d, _t: None)
    step("training", 0, 3)
    training, held_out = split(examples)
    trial = ml.train(training.texts, training.districts, training.classes, training.departments)
    step("training", 1, 3)
    known = set(trial.classes.labels)
    rows = [i for i, c in enumerate(held_out.classes) if c in known]
    tested = held_out.take(rows)
    metrics = ml.evaluate(trial, tested.texts, tested.districts, tested.classes, tested.departments)
    step("training", 2, 3)
    final = ml.train(examples.texts, examples.districts, examples.classes, examples.departments)
    step("training", 3, 3)
    metrics["held_out_share"] = HELD_OUT_SHARE
    metrics["dropped"] = final.dropped
    version = f"m{now.astimezone(UTC):%Y%m%d%H%M%S}-{len(examples)}"
    for older in session.scalars(select(LearnedModel).where(LearnedModel.active.is_(True))):
        older.active = False
    model = LearnedModel(
        version=version,
        created_at=now,
        trained_on=final.trained_on,
        seconds=round(final.seconds, 2),
        metrics=metrics,
        blob=final.dumps(),
        active=True,
    )
    session.add(model)
    session.flush()
    # This process looks again at once (its own session sees the new row; a rollback leaves
    # the old one active for everyone).
    _cache.forget()
    return model


def retrain_due(session: Session, *, now: datetime) -> LearnedModel | None:
    """The worker's schedule: a new model when the active one is older than a week and the
    city has closed more cases since (or none exists yet and there is enough to learn)."""
    current = session.scalar(
        select(LearnedModel).where(LearnedModel.active.is_(True)).order_by(LearnedModel.id.desc())
    )
    if current is not None:
        if now - current.created_at < RETRAIN_AFTER:
            return None
        newer = session.scalar(
            select(func.count())
            .select_from(Case)
            .where(Case.state.in_(CLOSED_STATES), Case.closed_at >= current.created_at)
        )
        if not newer:
            return None
    try:
        return learn(session, now=now)
    except ValidationFailed:
        return None


# -- the model in use --------------------------------------------------------------------------
class _ModelCache:
    """The active model per process. What is cached is keyed by row id *and* version, and
    nothing is cached from an uncommitted training: a rolled-back model is never served."""

    TTL = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[tuple[int, str], ml.Suggester] = {}
        self._checked: dict[Any, tuple[float, tuple[int, str] | None]] = {}

    def active(self, session: Session) -> tuple[int, str, ml.Suggester] | None:
        key = id(session.get_bind().engine) if session.get_bind() is not None else None
        with self._lock:
            checked = self._checked.get(key)
        if checked is None or time.monotonic() - checked[0] > self.TTL:
            row = session.execute(
                select(LearnedModel.id, LearnedModel.version)
                .where(LearnedModel.active.is_(True))
                .order_by(LearnedModel.id.desc())
                .limit(1)
            ).first()
            checked = (time.monotonic(), (row[0], row[1]) if row is not None else None)
            with self._lock:
                self._checked[key] = checked
        if checked[1] is None:
            return None
        model_id, version = checked[1]
        with self._lock:
            model = self._loaded.get((model_id, version))
        if model is None:
            blob = session.scalar(
                select(LearnedModel.blob).where(
                    LearnedModel.id == model_id, LearnedModel.version == version
                )
            )
            if blob is None:
                self.forget()
                return None
            model = ml.loads(blob)
            with self._lock:
                self._loaded = {(model_id, version): model}
        return model_id, version, model

    def forget(self) -> None:
        with self._lock:
            self._loaded.clear()
            self._checked.clear()


_cache = _ModelCache()
forget_models = _cache.forget


def has_model(session: Session) -> bool:
    """Whether a model is trained (at most one query per 30 s per database)."""
    return _cache.active(session) is not None


@dataclass(frozen=True)
class Suggestion:
    model_id: int
    model: str
    classes: list[dict[str, Any]]
    departments: list[dict[str, Any]]


def suggest(
    session: Session, text: str, *, district: str | None = None, limit: int = 3
) -> Suggestion | None:
    """The top classes and departments with probabilities, or None when no model is trained."""
    active = _cache.active(session)
    if active is None:
        return None
    model_id, version, model = active
    classes, departments = model.suggest(text[:MAX_TEXT], district, limit)
    names = {code: _class_name(session, code) for code, _p in classes}
    dept_ids = [int(d) for d, _ in departments if d.isdigit()]
    dept_names = (
        dict(
            session.execute(
                select(Department.id, Department.name).where(Department.id.in_(dept_ids))
            ).all()
        )
        if dept_ids
        else {}
    )
    return Suggestion(
        model_id,
        version,
        [{"code": c, "name": names.get(c, c), "p": round(p, 4)} for c, p in classes],
        [
            {"id": int(d), "name": dept_names.get(int(d), d), "p": round(p, 4)}
            for d, p in departments
            if d.isdigit() and int(d) in dept_names
        ],
    )


def _class_name(session: Session, code: str) -> str:
    found = find_class(session, code)  # the taxonomy's per-process copies: no query
    return found.name if found is not None else code


def similarity(session: Session, first: str, others: list[str]) -> list[float] | None:
    """How alike in meaning `first` is to each of `others` (0–1), by the active model."""
    active = _cache.active(session)
    if active is None or not others:
        return None
    vectors = active[2].class_vector([first[:MAX_TEXT], *(o[:MAX_TEXT] for o in others)])
    return [float(v) for v in vectors[1:] @ vectors[0]]


def record(
    session: Session,
    suggestion: Suggestion,
    *,
    case_id: int | None,
    source: str,
    chosen_class: str | None,
    now: datetime,
) -> SuggestionRecord:
    """Keep what was suggested for a report and, when a person chose the class, whether they
    took the model's first class (accepted) or another (overridden)."""
    top = suggestion.classes[0]["code"]
    row = SuggestionRecord(
        model_id=suggestion.model_id,
        case_id=case_id,
        at=now,
        source=source,
        classes=suggestion.classes,
        departments=suggestion.departments,
        top_class=top,
        top_department_id=suggestion.departments[0]["id"] if suggestion.departments else None,
        chosen_class=chosen_class,
        accepted=None if chosen_class is None else chosen_class == top,
    )
    session.add(row)
    session.flush()
    return row


def live_accuracy(session: Session, *, now: datetime, days: int) -> dict[str, Any]:
    """Of the suggestions of the last `days` days whose class a person settled (given at
    registration, or confirmed at filing), the share whose first class was the one chosen;
    per class (the class chosen) too."""
    since = now - timedelta(days=days)
    rows = session.execute(
        select(
            SuggestionRecord.top_class,
            SuggestionRecord.chosen_class,
            SuggestionRecord.top_department_id,
            Case.class_code,
            Case.class_confirmed,
            Case.department_id,
        )
        .outerjoin(Case, Case.id == SuggestionRecord.case_id)
        .where(SuggestionRecord.at >= since, SuggestionRecord.at <= now)
    ).all()
    total = right = dept_total = dept_right = 0
    per_class: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for top, chosen, top_dept, case_class, confirmed, case_dept in rows:
        truth = chosen or (case_class if confirmed else None)
        if truth is None:
            continue
        total += 1
        right += top == truth
        per_class[truth][0] += 1
        per_class[truth][1] += top == truth
        if case_dept is not None and top_dept is not None:
            dept_total += 1
            dept_right += top_dept == case_dept
    return {
        "days": days,
        "settled": total,
        "accuracy": round(right / total, 4) if total else None,
        "department_settled": dept_total,
        "department_accuracy": round(dept_right / dept_total, 4) if dept_total else None,
        "per_class": {
            code: {"n": n, "accuracy": round(ok / n, 4)}
            for code, (n, ok) in sorted(per_class.items())
        },
    }


# -- pre-filing (per source, off by default) ---------------------------------------------------
# Citizens' channels only: staff choose the class themselves, devices have their own rules.
PREFILE_SOURCES = frozenset({"public", "wechat", "app", "web", "open311"})


def set_prefile(
    session: Session, source: str, *, enabled: bool, threshold: float
) -> PrefileSetting:
    if source not in PREFILE_SOURCES:
        raise ValidationFailed(
            f"pre-filing is for citizens' sources: {', '.join(sorted(PREFILE_SOURCES))}",
            field="source",
        )
    if not 0.5 <= threshold <= 1.0:
        raise ValidationFailed("threshold must be between 0.5 and 1", field="threshold")
    row = session.get(PrefileSetting, source)
    if row is None:
        row = PrefileSetting(source=source)
        session.add(row)
    row.enabled, row.threshold = enabled, threshold
    session.flush()
    return row


def prefile(session: Session, source: str, suggestion: Suggestion) -> bool:
    """Whether this report goes to the filing queue pre-classified (the city switched it on
    for the source and the first class is probable enough)."""
    if source not in PREFILE_SOURCES or not suggestion.classes:
        return False
    row = session.get(PrefileSetting, source)
    return bool(row is not None and row.enabled and suggestion.classes[0]["p"] >= row.threshold)
