"""The `cityloop` command: demo, serve, worker, migrate, verify-audit, backup, restore."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session

from cityloop.config import get_settings

app = typer.Typer(
    help="cityloop 数字城管: the closed loop of city management.", no_args_is_help=True
)
console = Console()

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="database URL (default: CITYLOOP_DATABASE_URL or var/cityloop.db)"),
]
PortOption = Annotated[int, typer.Option("--port", help="HTTP port")]
HostOption = Annotated[str, typer.Option("--host", help="address to listen on")]


def _use_database(db: str | None) -> str:
    if db:
        os.environ["CITYLOOP_DATABASE_URL"] = db
        get_settings.cache_clear()
    return get_settings().database_url


def _session(url: str, *, write: bool = False) -> Session:
    from cityloop.db import begin_write, make_engine, make_session_factory

    session = make_session_factory(make_engine(url))()
    if write:
        begin_write(session)
    return session


def _require_keys() -> None:
    """Stop before serving with no key, a weak key or the public one (org.keyring)."""
    from cityloop.org.keyring import InsecureSecret

    try:
        get_settings().keyring()
    except InsecureSecret as exc:
        console.print(f"[red]refusing to start:[/red] {exc}")
        raise typer.Exit(2) from exc


def _demo_key() -> None:
    """The demo city's own key, made once in its data directory (mode 0600), unless the
    environment gives one; the server processes read it from there."""
    from cityloop.org.keyring import ensure_key_file

    settings = get_settings()
    if settings.secret_key or settings.secret_key_file:
        return
    path = ensure_key_file(settings.data_dir / "secret.key")
    os.environ["CITYLOOP_SECRET_KEY_FILE"] = str(path.resolve())
    get_settings.cache_clear()


@app.command()
def check(
    db: DbOption = None,
    servers: Annotated[
        int, typer.Option(help="API processes in all (machines × serve --workers)")
    ] = 2,
    workers: Annotated[int, typer.Option(help="`cityloop worker` processes")] = 1,
) -> None:
    """Name every unsafe production setting; exit 1 when there is any (the go-live doctor)."""
    from cityloop.deployment.checks import check_deployment

    _use_database(db)
    findings = check_deployment(get_settings(), servers=servers, workers=workers)
    for finding in findings:
        mark = "[red]UNSAFE[/red]" if finding.unsafe else "[green]ok[/green]    "
        console.print(f"{mark} {finding.setting}: {finding.message}", highlight=False)
    unsafe = [f.setting for f in findings if f.unsafe]
    if unsafe:
        console.print(f"[red]{len(unsafe)} unsafe setting(s):[/red] {', '.join(unsafe)}")
        raise typer.Exit(1)
    console.print("[green]no unsafe setting found[/green]")


@app.command()
def migrate(db: DbOption = None) -> None:
    """Bring the database schema up to date (Alembic upgrade head)."""
    from cityloop.migrate import upgrade

    url = _use_database(db)
    upgrade(url)
    console.print(f"[green]schema up to date[/green] on {url}")


@app.command()
def demo(
    port: PortOption = 8000,
    host: HostOption = "127.0.0.1",
    db: DbOption = None,
    cases: Annotated[int, typer.Option(help="how many demo cases to generate")] = 300,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="serve after building")
    ] = True,
) -> None:
    """Build the demo city (Xiamen) into an empty database, then serve it."""
    from cityloop.demo.build import DEMO_PASSWORD, build, is_empty
    from cityloop.migrate import upgrade

    url = _use_database(db)
    _demo_key()
    upgrade(url)
    session = _session(url, write=True)
    try:
        if is_empty(session):
            started = time.perf_counter()
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                tasks: dict[str, TaskID] = {}

                def progress(step: str, done: int, total: int) -> None:
                    if step not in tasks:
                        tasks[step] = bar.add_task(f"building {step}", total=total)
                    bar.update(tasks[step], completed=done, total=total)

                summary = build(session, cases=cases, progress=progress)
            session.commit()
            took = time.perf_counter() - started
            console.print(f"[green]demo city built[/green] in {took:.1f} s: {summary}")
        else:
            console.print("database already holds a city; serving it as it is")
    finally:
        session.close()
    console.print(
        f"accounts: admin, operator, shiftlead, dispatcher, inspector, handler, leader — "
        f"password [bold]{DEMO_PASSWORD}[/bold]"
    )
    if serve_after:
        serve(port=port, host=host, db=None)


@app.command()
def serve(
    port: PortOption = 8000,
    host: HostOption = "127.0.0.1",
    db: DbOption = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
) -> None:
    """Serve the API (OpenAPI docs at /docs)."""
    import uvicorn

    url = _use_database(db)
    _require_keys()
    console.print(f"cityloop on http://{host}:{port}  (docs: /docs, database: {url})")
    # With several workers sharing the listening socket, libuv accepts every pending
    # connection in one go: the first worker awake took most of the keep-alive clients (0.85
    # of a core against 0.36 on bench/bench_intake.py). One accept per wake-up spreads them.
    os.environ.setdefault("UV_TCP_SINGLE_ACCEPT", "1")
    uvicorn.run(
        "cityloop.app:create_server_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,  # a line per request costs throughput; errors are still logged
    )


@app.command()
def worker(
    db: DbOption = None,
    interval: Annotated[float, typer.Option(help="seconds between sweeps")] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="sweep once and exit")] = False,
) -> None:
    """Run the clock sweep (deadline warnings, overdue marks, automatic urging), then bring the
    evaluation rollups up to the timeline and deliver the outbox (status pushes to partner
    platforms), each pass after the previous one's commit."""
    from sqlalchemy.exc import OperationalError

    from cityloop.db import make_engine, make_session_factory
    from cityloop.evaluation import rollup
    from cityloop.kit.clock import Clock
    from cityloop.outbox.delivery import deliver_due
    from cityloop.supervision.sweep import sweep
    from cityloop.taxonomy.service import working_calendar

    url = _use_database(db)
    clock = Clock()
    outbox = make_session_factory(make_engine(url))
    while True:
        try:
            session = _session(url, write=True)
            try:
                calendar = working_calendar(session, get_settings().timezone)
                result = sweep(session, now=clock.now(), calendar=calendar)
                session.commit()
            finally:
                session.close()
            console.print(
                f"swept {result.examined}: {result.warnings} warnings, "
                f"{result.overdue} overdue, {result.urged} urged"
            )
            # Its own transaction: a failure here must not undo the sweep's marks.
            session = _session(url, write=True)
            try:
                rolled = rollup.refresh(session, calendar=calendar, now=clock.now())
                session.commit()
            finally:
                session.close()
            console.print(
                f"rollups {'rebuilt' if rolled.rebuilt else 'refreshed'}: {rolled.cases} cases, "
                f"up to event {rolled.last_event_id}"
            )
            pushed = deliver_due(outbox, now=clock.now())
            console.print(
                f"outbox: {pushed.delivered} delivered, {pushed.retried} to retry, "
                f"{pushed.failed} failed"
            )
        except OperationalError as exc:
            # The database went away (restart, failover): what this pass did not commit is
            # still due, so the next pass does it; the worker itself stays up.
            reason = (str(exc.orig).strip().splitlines() or ["?"])[0]
            console.print(f"[yellow]database unavailable ({reason}); next pass in {interval:g} s")
            if once:
                raise typer.Exit(1) from exc
        if once:
            return
        time.sleep(interval)


@app.command("import-places")
def import_places(
    path: Annotated[Path, typer.Argument(help="a GeoJSON FeatureCollection (WGS-84)")],
    level: Annotated[
        str, typer.Option(help="city, district, street, community, resp_grid or unit_grid")
    ],
    db: DbOption = None,
) -> None:
    """Import a city's regions or unit grids from GeoJSON (properties: code, name, parent_code;
    unit grids: code, community_code, resp_grid_code)."""
    import json

    from cityloop.places.service import import_geojson, import_unit_grids

    url = _use_database(db)
    try:
        collection = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot read {path}: {exc}[/red]")
        raise typer.Exit(2) from exc
    session = _session(url, write=True)
    try:
        if level == "unit_grid":
            count = import_unit_grids(session, collection)
        else:
            count = import_geojson(session, collection, level)
        session.commit()
    except ValueError as exc:
        session.rollback()
        console.print(f"[red]nothing imported: {exc}[/red]")
        raise typer.Exit(2) from exc
    finally:
        session.close()
    console.print(f"[green]imported {count} {level} features[/green]")


@app.command("verify-audit")
def verify_audit(db: DbOption = None) -> None:
    """Recompute every case timeline's hash chain; exit 1 if any row was changed."""
    from sqlalchemy.engine import Engine

    from cityloop.cases.audit import verify_audit as check

    url = _use_database(db)
    session = _session(url)
    try:
        checked, findings = check(session)
    finally:
        session.close()
        bind = session.get_bind()
        if isinstance(bind, Engine):
            bind.dispose()  # no pooled connection left for the collector to close
    for f in findings:
        console.print(f"[red]case {f.case_id} event {f.seq} (id {f.event_id}): {f.problem}[/red]")
    if findings:
        console.print(f"[red]{len(findings)} problem(s) in {checked} events[/red]")
        raise typer.Exit(1)
    console.print(f"[green]{checked} events checked, every chain intact[/green]")


PgBinOption = Annotated[
    Path | None,
    typer.Option(
        "--pg-bin",
        envvar="CITYLOOP_PG_BIN",
        help="directory holding pg_dump / pg_restore (default: the server's version under "
        "/usr/lib/postgresql, else PATH)",
    ),
]


@contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        yield progress


@app.command()
def backup(
    out: Annotated[Path, typer.Option("--out", help="the backup file (replaced if it exists)")],
    db: DbOption = None,
    pg_bin: PgBinOption = None,
) -> None:
    """Back up the whole database while it runs: SQLite through its backup API, PostgreSQL
    through pg_dump. Writes FILE, and FILE.manifest.json with the row counts and a digest of
    every case timeline. Photos under CITYLOOP_DATA_DIR/media are files: copy them too."""
    from cityloop.backup.service import BackupError
    from cityloop.backup.service import backup as run_backup

    url = _use_database(db)
    try:
        with _progress_bar() as progress:
            outcome = run_backup(url, out, progress=progress, pg_bindir=pg_bin)
    except BackupError as exc:
        console.print(f"[red]no backup written: {exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(
        f"[green]backed up[/green] to {out} ({outcome.bytes / 1e6:.1f} MB in "
        f"{outcome.seconds:.1f} s): {outcome.fingerprint.summary()}"
    )


@app.command()
def restore(
    source: Annotated[Path, typer.Option("--from", help="a file written by `cityloop backup`")],
    db: DbOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="replace a database that already holds data")
    ] = False,
    pg_bin: PgBinOption = None,
) -> None:
    """Restore a backup into an empty database (--force replaces one that holds data), then
    prove it: row counts and timeline digest against the backup's manifest, and every case's
    hash chain recomputed (as verify-audit does). Stop the server and worker first."""
    from cityloop.backup.service import BackupError
    from cityloop.backup.service import restore as run_restore
    from cityloop.cases.audit import verify_audit as check
    from cityloop.db import make_engine

    url = _use_database(db)
    try:
        with _progress_bar() as progress:
            outcome = run_restore(url, source, force=force, progress=progress, pg_bindir=pg_bin)
    except BackupError as exc:
        console.print(f"[red]nothing restored: {exc}[/red]")
        raise typer.Exit(2) from exc
    restored = outcome.fingerprint
    console.print(
        f"[green]restored[/green] {source} in {outcome.seconds:.1f} s: {restored.summary()}"
    )
    problems = restored.differences(outcome.expected) if outcome.expected else []
    if outcome.expected is None:
        console.print("[yellow]no manifest beside the backup: counts not compared[/yellow]")
    elif not problems:
        console.print("counts and timeline digest equal the backup's manifest")
    for problem in problems:
        console.print(f"[red]{problem}[/red]")
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            checked, findings = check(session)
    finally:
        engine.dispose()
    for f in findings[:20]:
        console.print(f"[red]case {f.case_id} event {f.seq} (id {f.event_id}): {f.problem}[/red]")
    if findings or problems:
        console.print(
            f"[red]the restored database differs from the backup: {len(problems)} count "
            f"difference(s), {len(findings)} timeline problem(s) in {checked} events[/red]"
        )
        raise typer.Exit(1)
    console.print(f"[green]{checked} events checked, every chain intact[/green]")


@app.command("mqtt-bridge")
def mqtt_bridge(
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="broker host (CITYLOOP_MQTT_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="broker port (CITYLOOP_MQTT_PORT)")] = None,
) -> None:
    """Subscribe to sensor readings over MQTT ({prefix}/+/readings): alarms become cases, repeats
    and recoveries are noted on them, silent sensors are marked. Settings: CITYLOOP_MQTT_*."""
    import logging
    import signal
    import threading

    from cityloop.iot.bridge import run_bridge
    from cityloop.iot.settings import MqttSettings

    url = _use_database(db)
    settings = MqttSettings()
    if host is not None or port is not None:
        settings = settings.model_copy(
            update={k: v for k, v in (("host", host), ("port", port)) if v is not None}
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    console.print(
        f"bridging mqtt://{settings.host}:{settings.port} {settings.subscription} → {url}"
    )
    run_bridge(url, settings, timezone=get_settings().timezone, stop=stop)


@app.command("jt808-gateway")
def jt808_gateway(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="TCP port for the terminals")] = 7808,
) -> None:
    """Accept vehicle terminals over JT/T 808 (2013 and 2019): registration, authentication,
    heartbeats, locations (single and batch) stored in batches; silent terminals marked stale."""
    import logging

    from cityloop.fleet.gateway import run_gateway

    url = _use_database(db)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    console.print(f"JT/T 808 gateway on {host}:{port} → {url}")
    run_gateway(url, host, port)


@app.command("fleet-mqtt")
def fleet_mqtt(db: DbOption = None) -> None:
    """Store positions of radios and other devices published on MQTT
    (cityloop/fleet/person/{username}/position, cityloop/fleet/vehicle/{terminal}/position).
    Broker settings: CITYLOOP_MQTT_* (client id cityloop-fleet unless set)."""
    import logging
    import os
    import signal
    import threading

    from cityloop.db import make_engine, make_session_factory
    from cityloop.fleet.mqtt import SUBSCRIPTION, PositionBridge
    from cityloop.iot.settings import MqttSettings
    from cityloop.places.service import PlaceIndex

    url = _use_database(db)
    settings = MqttSettings()
    if "CITYLOOP_MQTT_CLIENT_ID" not in os.environ:
        settings = settings.model_copy(update={"client_id": "cityloop-fleet"})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        places = PlaceIndex.load(session)
    console.print(f"positions from mqtt://{settings.host}:{settings.port} {SUBSCRIPTION} → {url}")
    try:
        PositionBridge(factory, places, settings).run(stop)
    finally:
        engine.dispose()


@app.command("evaluation-report")
def evaluation_report(
    period: Annotated[
        str, typer.Option(help="2026-09, 2026-W36, 2026-Q3, 2026, 2026-09-02 or a..b range")
    ],
    out: Annotated[Path, typer.Option(help="the .xlsx file to write")],
    db: DbOption = None,
    refresh: Annotated[
        bool, typer.Option("--refresh/--no-refresh", help="bring the rollups up to date first")
    ] = True,
) -> None:
    """Write the evaluation workbook (考核报表) of a period: one sheet per evaluated kind."""
    from cityloop.cases.service import Actor
    from cityloop.errors import DomainError
    from cityloop.evaluation import rollup, service
    from cityloop.evaluation.periods import parse_period
    from cityloop.evaluation.report import write_workbook
    from cityloop.kit.clock import Clock
    from cityloop.taxonomy.service import working_calendar

    url = _use_database(db)
    now = Clock().now()
    try:
        chosen = parse_period(period)
    except DomainError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(2) from exc
    session = _session(url, write=refresh)
    try:
        calendar = working_calendar(session, get_settings().timezone)
        if refresh:
            rollup.refresh(session, calendar=calendar, now=now)
            session.commit()
        ctx = service.context(
            session,
            chosen,
            actor=Actor(None, "命令行", "admin"),
            now=now,
            calendar=calendar,
            kind="report",
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as handle:
            write_workbook(ctx, handle)
        session.rollback()  # nothing to keep: the report's temporary rows go with it
    finally:
        session.close()
    console.print(f"[green]{chosen.label} 综合评价[/green] written to {out}")


@app.command("evaluation-refresh")
def evaluation_refresh(
    db: DbOption = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="derive every case again")] = False,
) -> None:
    """Bring the evaluation rollups up to the case timeline (the worker does this too)."""
    from cityloop.evaluation import rollup
    from cityloop.kit.clock import Clock
    from cityloop.taxonomy.service import working_calendar

    url = _use_database(db)
    session = _session(url, write=True)
    try:
        calendar = working_calendar(session, get_settings().timezone)
        run = rollup.rebuild if rebuild else rollup.refresh
        started = time.perf_counter()
        result = run(session, calendar=calendar, now=Clock().now())
        session.commit()
    finally:
        session.close()
    console.print(
        f"rollups {'rebuilt' if result.rebuilt else 'refreshed'}: {result.cases} cases, "
        f"{result.events} events, up to event {result.last_event_id} "
        f"in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    app()
