"""The HTTP stack alone, as a ceiling for bench_intake.py: the same uvicorn, FastAPI and
pydantic as cityloop, one POST route that validates a report-shaped body and answers 201
with a report-shaped body, and no database. Served by `uvicorn bench.noop_app:app`."""

from __future__ import annotations

import itertools

from fastapi import FastAPI
from pydantic import BaseModel, Field

app = FastAPI()
_ids = itertools.count(1)


class ReportIn(BaseModel):
    source: str = Field(max_length=40)
    class_code: str | None = Field(default=None, max_length=20)
    description: str = Field(max_length=2000)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)


class ReportOut(BaseModel):
    id: int
    ticket: str
    state: str
    class_code: str
    class_confirmed: bool


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/reports", status_code=201, response_model=ReportOut)
def post_report(body: ReportIn) -> ReportOut:
    case_id = next(_ids)
    return ReportOut(
        id=case_id,
        ticket=f"NOOP{case_id:08d}",
        state="reported",
        class_code=body.class_code or "",
        class_confirmed=True,
    )
