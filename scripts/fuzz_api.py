"""Fuzz the whole OpenAPI with schemathesis, in-process against the ASGI app (no server).

Every operation of /openapi.json gets generated requests (valid and invalid) as several callers:
anonymous, with an administrator's token, and with a handler's token; operations that take an
``X-Api-Key`` are also called with a valid partner or device key. Checks: no 5xx and no
unhandled exception; every 4xx carries a message (``detail`` in the API's error shape, a
``description`` in Open311's); every answer is as the OpenAPI says — a documented status, a
body that validates against the documented schema, a documented content type.

The CI test (tests/security/test_fuzz_openapi.py) runs this harness on a small budget; run it
by hand for a bigger one:

    .venv/bin/python scripts/fuzz_api.py [--max-examples 100] [--db URL] [--seed N]
        [--operations REGEX] [--callers anonymous,admin,handler]

Without ``--db`` the demo city is built into a temporary SQLite file; ``--db`` must name an
empty database (it is filled with the demo city and then fuzzed: it is left dirty).
Exit status 1 when a check failed.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from starlette.types import ASGIApp, Receive, Scope, Send

# Valid keys of the demo city (src/cityloop/partners/demo.py, src/cityloop/iot/demo.py).
DEMO_KEYS = {
    "/api/v1/partners/reports": "demo-12345-key",
    "/api/v1/detections": "demo-camera-key",
    "/api/v1/sensors/{code}/readings": "demo-sensor-key",
}
FUZZ_CLIENT = ("fuzz", 40000)


class FuzzClientAddress:
    """Gives the fuzzer's requests their own client address, so that the per-address limits it
    trips (citizen reports, logins) are not the ones other tests in the process count on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": FUZZ_CLIENT}
        await self.app(scope, receive, send)


@dataclass
class Failure:
    operation: str
    caller: str
    status: int | None
    problem: str
    reproduce: str
    body: str

    def line(self) -> str:
        status = self.status if self.status is not None else "-"
        return (
            f"{self.operation} as {self.caller}: {status} {self.problem}\n"
            f"    {self.reproduce}\n    {self.body[:300]!r}"
        )


@dataclass
class Summary:
    requests: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    per_operation: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)

    def distinct_failures(self) -> list[Failure]:
        """One failure per (operation, caller, status, problem)."""
        seen: dict[tuple[str, str, int | None, str], Failure] = {}
        for f in self.failures:
            seen.setdefault((f.operation, f.caller, f.status, f.problem), f)
        return list(seen.values())

    def report(self) -> str:
        classes = Counter(f"{status // 100}xx" for status in self.statuses.elements())
        lines = [
            f"{self.requests} requests over {len(self.per_operation)} operations in "
            f"{self.seconds:.1f} s ({self.requests / max(self.seconds, 1e-9):.0f}/s)",
            "by status class: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())),
            "by status: " + ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items())),
        ]
        distinct = self.distinct_failures()
        if distinct:
            lines.append(f"{len(self.failures)} failed checks, {len(distinct)} distinct:")
            lines += [f.line() for f in distinct]
        else:
            lines.append("no failed checks: no 5xx, every 4xx carries a message")
        return "\n".join(lines)


def _has_message(path: str, response: Any) -> bool:
    """A 4xx tells the caller what was wrong: the API's {"detail": ...}, or Open311's error
    list (XML or JSON) with a description."""
    text = response.text or ""
    if path.startswith("/open311/"):
        if "<description>" in text:
            return bool(re.search(r"<description>[^<]+</description>", text))
        try:
            body = json.loads(text)
        except ValueError:
            return False
        return isinstance(body, list) and all(
            isinstance(e, dict) and e.get("description") for e in body
        )
    try:
        body = json.loads(text)
    except ValueError:
        return False
    detail = body.get("detail") if isinstance(body, dict) else None
    return isinstance(detail, str) and detail.strip() != ""


def _nonconformance(case: Any, response: Any) -> str | None:
    """What in the answer the published OpenAPI does not describe: its status, its body, its
    content type; None when it conforms."""
    from schemathesis.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    try:
        case.validate_response(
            response,
            checks=[status_code_conformance, response_schema_conformance, content_type_conformance],
        )
    except BaseException as exc:  # schemathesis raises a group of failures
        if isinstance(exc, KeyboardInterrupt):
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        return f"not as the OpenAPI says: {first[:200]}"
    return None


def _header_params(operation: Any) -> set[str]:
    names = set()
    for param in operation.definition.raw.get("parameters", []):
        if isinstance(param, dict) and param.get("in") == "header":
            names.add(str(param.get("name", "")).lower())
    return names


def fuzz(
    app: ASGIApp,
    callers: Mapping[str, Mapping[str, str]],
    *,
    max_examples: int,
    derandomize: bool = False,
    seed: int | None = None,
    operations: str | None = None,
    progress: Callable[[str], None] | None = None,
    conformance: bool = True,
) -> Summary:
    """Run schemathesis over every operation as every caller (name → headers to send)."""
    wrapped = FuzzClientAddress(app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    pattern = re.compile(operations) if operations else None
    summary = Summary()
    started = time.perf_counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = operation.label
        if pattern is not None and not pattern.search(label):
            continue
        keyed = "x-api-key" in _header_params(operation)
        for caller, base_headers in callers.items():
            headers = dict(base_headers)
            if keyed and caller != "anonymous" and operation.path in DEMO_KEYS:
                headers["X-Api-Key"] = DEMO_KEYS[operation.path]
            _fuzz_one(
                wrapped,
                operation,
                label,
                caller,
                headers,
                summary,
                max_examples,
                seed,
                derandomize,
                conformance,
            )
        if progress is not None:
            progress(f"{label}: {summary.per_operation[label]} requests")
    summary.seconds = time.perf_counter() - started
    return summary


def _fuzz_one(
    app: ASGIApp,
    operation: Any,
    label: str,
    caller: str,
    headers: dict[str, str],
    summary: Summary,
    max_examples: int,
    seed: int | None,
    derandomize: bool,
    conformance: bool,
) -> None:
    def check(case: Any) -> None:
        summary.requests += 1
        summary.per_operation[label] += 1
        try:
            response = case.call(headers=headers, app=app)
        except Exception as exc:  # an exception escaping the app is a 500 on a real server
            first = (str(exc).strip().splitlines() or [""])[0][:160]
            summary.failures.append(
                Failure(
                    label,
                    caller,
                    None,
                    f"unhandled {type(exc).__name__}: {first}",
                    case.as_curl_command(headers=headers),
                    str(exc),
                )
            )
            return
        status = response.status_code
        summary.statuses[status] += 1
        problem = None
        if status >= 500:
            problem = "server error"
        elif 400 <= status < 500 and not _has_message(operation.path, response):
            problem = "4xx without a message"
        if problem is None and conformance:
            problem = _nonconformance(case, response)
        if problem is not None:
            summary.failures.append(
                Failure(
                    label,
                    caller,
                    status,
                    problem,
                    case.as_curl_command(headers=headers),
                    response.text or "",
                )
            )

    test = given(case=operation.as_strategy())(check)
    test = settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        # No shrinking: every failing request is recorded as it is, shrinking only costs time.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )(test)
    if seed is not None:
        from hypothesis import seed as hypothesis_seed

        test = hypothesis_seed(seed)(test)
    test()


def bearer(session: Any, username: str, secret: str, minutes: int = 600) -> dict[str, str]:
    from sqlalchemy import select

    from cityloop.org.models import User
    from cityloop.org.service import issue_token

    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise SystemExit(f"no user {username!r} in the database")
    return {"Authorization": f"Bearer {issue_token(user, secret, minutes)}"}


def _build_city(url: str, media_dir: Path) -> None:
    from sqlalchemy import inspect
    from sqlalchemy.orm import Session

    from cityloop.db import Base, make_engine
    from cityloop.demo.build import build

    engine = make_engine(url)
    if inspect(engine).get_table_names():
        raise SystemExit(f"{url} is not empty: give an empty database")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        build(session, cases=20, now=datetime.now(UTC), media_dir=media_dir)
        session.commit()
    engine.dispose()


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=100, help="per operation and caller")
    parser.add_argument("--db", help="an empty database URL (default: a temporary SQLite file)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--operations", help="only operations whose label matches this regex")
    parser.add_argument("--callers", default="anonymous,admin,handler")
    args = parser.parse_args(list(argv) if argv is not None else None)

    from sqlalchemy.orm import Session

    from cityloop.app import create_app
    from cityloop.config import Settings
    from cityloop.db import make_engine
    from cityloop.models import load_all_models

    load_all_models()
    workdir = Path(tempfile.mkdtemp(prefix="cityloop-fuzz-"))
    url = args.db or f"sqlite:///{workdir / 'fuzz.db'}"
    print(f"building the demo city into {url} ...", flush=True)
    _build_city(url, workdir / "media")
    settings_ = Settings(database_url=url, secret_key=secrets.token_urlsafe(32), data_dir=workdir)
    engine = make_engine(url)
    app = create_app(settings_, engine=engine)
    names = [c.strip() for c in args.callers.split(",") if c.strip()]
    with Session(engine) as session:
        callers = {
            name: {} if name == "anonymous" else bearer(session, name, settings_.secret_key)
            for name in names
        }
    print(f"fuzzing as {', '.join(callers)}, {args.max_examples} examples each ...", flush=True)
    summary = fuzz(
        app,
        callers,
        max_examples=args.max_examples,
        seed=args.seed,
        operations=args.operations,
        progress=lambda line: print("  " + line, flush=True),
    )
    engine.dispose()
    print(summary.report())
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
