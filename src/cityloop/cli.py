"""The `cityloop` command: demo, serve, worker, migrate, verify-audit, sweep-media, backup,
restore."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

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
    from cityloop.listeners import register_listeners

    # Every command that opens the database may run a flow: its listeners first.
    register_listeners()
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
        f"accounts: admin, operator, shiftlead, dispatcher, inspector, handler, leader, "
        f"officer, legal_reviewer, enforcement_chief — "
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
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told otherwise: any local client
    # could then choose the address the login throttle counts. Only CITYLOOP_TRUSTED_PROXIES.
    trusted = get_settings().trusted_proxies.strip()
    uvicorn.run(
        "cityloop.app:create_server_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,  # a line per request costs throughput; errors are still logged
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or "",
    )


@app.command()
def worker(
    db: DbOption = None,
    interval: Annotated[float, typer.Option(help="seconds between sweeps")] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="sweep once and exit")] = False,
) -> None:
    """Run the clock sweep (deadline warnings, overdue marks, automatic urging), then bring the
    evaluation rollups up to the timeline and deliver the outbox (status pushes to partner
    platforms, notifications by SMS, e-mail and WeChat, department webhooks), each pass after
    the previous one's commit."""
    from sqlalchemy.exc import OperationalError

    from cityloop.db import make_engine, make_session_factory
    from cityloop.evaluation import rollup
    from cityloop.kit.clock import Clock
    from cityloop.notifications.channels import register_channels
    from cityloop.outbox.delivery import deliver_due
    from cityloop.supervision.sweep import sweep
    from cityloop.taxonomy.service import working_calendar

    url = _use_database(db)
    _require_keys()  # the erasure's keyed digests are made with the signing key
    register_channels()
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
            _learning_pass(url, clock.now())
            pushed = deliver_due(outbox, now=clock.now())
            console.print(
                f"outbox: {pushed.delivered} delivered, {pushed.retried} to retry, "
                f"{pushed.failed} failed"
            )
            _erase_expired(url, clock.now())
            _anchor_if_due(url)
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


def _close(session: Session) -> None:
    """Close a command's session and its engine: no pooled connection left for the
    collector to close."""
    from sqlalchemy.engine import Engine

    session.close()
    bind = session.get_bind()
    if isinstance(bind, Engine):
        bind.dispose()


def _departments(url: str) -> list[Any]:
    from sqlalchemy import select

    from cityloop.org.models import Department

    session = _session(url)
    try:
        return list(session.scalars(select(Department)))
    finally:
        _close(session)


def _learning_pass(url: str, now: datetime) -> None:
    """The worker's share of learning, each in its own transaction: photo integrity since the
    last pass, today's early warnings, yesterday's re-check draw, and a retrain when due."""
    from cityloop.learning import integrity, service, warning

    steps: list[tuple[str, Callable[[Session], str]]] = [
        (
            "integrity",
            lambda s: "{0.photos} photos, {0.flags} flags".format(
                integrity.scan(s, media_dir=get_settings().media_dir, now=now)
            ),
        ),
        ("early warning", lambda s: f"{len(warning.detect(s, now=now))} alerts"),
        ("re-check draw", lambda s: f"{len(integrity.draw_due(s, now=now))} drawn"),
        ("model", lambda s: m.version if (m := service.retrain_due(s, now=now)) else "current"),
    ]
    for name, step in steps:
        session = _session(url, write=True)
        try:
            said = step(session)
            session.commit()
        finally:
            _close(session)
        console.print(f"{name}: {said}")


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


@app.command("sweep-media")
def sweep_media(
    db: DbOption = None,
    older_than_minutes: Annotated[
        float, typer.Option(help="leave files younger than this: a request may be saving them")
    ] = 60,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list, do not remove")] = False,
) -> None:
    """Remove media files no row names (left by a process killed mid-request)."""
    from datetime import timedelta

    from cityloop.media.service import sweep_orphans

    url = _use_database(db)
    session = _session(url)
    engine = session.get_bind()
    try:
        removed = sweep_orphans(
            session,
            get_settings().media_dir,
            older_than=timedelta(minutes=older_than_minutes),
            dry_run=dry_run,
        )
    finally:
        session.close()
        engine.dispose()  # type: ignore[union-attr]
    for name in removed:
        console.print(f"  {name}")
    verb = "would remove" if dry_run else "removed"
    console.print(f"{verb} {len(removed)} file(s) no media row names")


@app.command("import-enforcement")
def import_enforcement(
    path: Annotated[Path, typer.Argument(help="a CSV file with a header row")],
    register: Annotated[str, typer.Option(help="laws, violations or tiers")],
    db: DbOption = None,
) -> None:
    """Import an enforcement register from CSV (R-LE-2): laws and articles (law_code,
    law_name, issuer, effective, article, text, is_summary), violations (code, name,
    violation_law, violation_article, penalty_law, penalty_article, class_codes) or discretion
    tiers (violation_code, tier, conditions, fine_min, fine_max, percent_min, percent_max,
    percent_of, penalties, first_offence_exempt). A bad row imports nothing."""
    from cityloop.enforcement import importing
    from cityloop.errors import ValidationFailed

    runs = {
        "laws": importing.import_laws,
        "violations": importing.import_violations,
        "tiers": importing.import_tiers,
    }
    if register not in runs:
        console.print("[red]--register must be laws, violations or tiers[/red]")
        raise typer.Exit(2)
    url = _use_database(db)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        console.print(f"[red]cannot read {path}: {exc}[/red]")
        raise typer.Exit(2) from exc
    session = _session(url, write=True)
    try:
        count = runs[register](session, text)
        session.commit()
    except ValidationFailed as exc:
        session.rollback()
        console.print(f"[red]nothing imported: {exc.message}[/red]")
        raise typer.Exit(2) from exc
    finally:
        session.close()
    console.print(f"[green]imported {count} {register} rows[/green]")


@app.command("verify-audit")
def verify_audit(
    db: DbOption = None,
    anchors: Annotated[
        bool,
        typer.Option(
            "--anchors", help="also check the database against the signed anchors (anchoring/)"
        ),
    ] = False,
) -> None:
    """Recompute every flow's timeline hash chains (cases and enforcement cases); exit 1 if
    any row was changed. With --anchors, also find rewritten tails, deleted cases and forged
    anchors."""
    from sqlalchemy.engine import Engine

    from cityloop.cases.audit import verify_audit as check

    url = _use_database(db)
    session = _session(url)
    anchor_findings: list[str] = []
    anchors_checked = 0
    try:
        checked, findings = check(session)
        if anchors:
            anchors_checked, anchor_findings = _check_anchors(session)
    finally:
        session.close()
        bind = session.get_bind()
        if isinstance(bind, Engine):
            bind.dispose()  # no pooled connection left for the collector to close
    for f in findings:
        console.print(
            f"[red]{f.flow} {f.case_id} event {f.seq} (id {f.event_id}): {f.problem}[/red]"
        )
    for problem in anchor_findings:
        console.print(f"[red]{problem}[/red]", highlight=False)
    if findings or anchor_findings:
        console.print(
            f"[red]{len(findings) + len(anchor_findings)} problem(s) in {checked} events"
            + (f" and {anchors_checked} anchors" if anchors else "")
            + "[/red]"
        )
        raise typer.Exit(1)
    console.print(
        f"[green]{checked} events checked, every chain intact"
        + (f"; {anchors_checked} anchors signed and matching" if anchors else "")
        + "[/green]"
    )


def _check_anchors(session: Session) -> tuple[int, list[str]]:
    from cityloop.anchoring import service as anchoring

    settings = get_settings()
    trusted = anchoring.parse_public_keys(settings.anchor_public_keys)
    if settings.anchor_signing_key.exists():
        trusted.append(
            anchoring.load_or_make_key(settings.anchor_signing_key, make=False).public_key()
        )
    try:
        count, findings = anchoring.verify_anchors(
            session, anchoring.FileAnchorLog(settings.anchor_log_dir), trusted
        )
    except anchoring.AnchorError as exc:
        return 0, [f"anchors: {exc}"]
    return count, [
        (f"anchor {f.anchor}: " if f.anchor is not None else "") + f.problem for f in findings
    ]


def _erase_expired(url: str, now: Any) -> None:
    """Personal data whose retention ran out (privacy/), in its own transaction."""
    from cityloop.privacy.service import erase_expired

    session = _session(url, write=True)
    try:
        erased = erase_expired(session, now=now, keyring=get_settings().keyring())
        session.commit()
    finally:
        _close(session)
    if erased.cases or erased.calls:
        console.print(f"personal data erased: {erased.cases} cases, {erased.calls} calls")


def _anchor_if_due(url: str) -> None:
    from datetime import UTC, datetime, timedelta

    from cityloop.anchoring import service as anchoring

    settings = get_settings()
    key = anchoring.load_or_make_key(settings.anchor_signing_key, make=True)
    session = _session(url)
    try:
        made = anchoring.anchor_if_due(
            session,
            anchoring.FileAnchorLog(settings.anchor_log_dir),
            key,
            now=datetime.now(UTC),
            every=timedelta(hours=settings.anchor_every_hours),
        )
    finally:
        _close(session)
    if made is not None:
        console.print(f"anchor {made.number}: {made.count} timelines signed")


@app.command("audit-anchor")
def audit_anchor(db: DbOption = None) -> None:
    """Sign the timelines' heads now and append the anchor to the anchor log (the worker
    does it every CITYLOOP_ANCHOR_EVERY_HOURS)."""
    from datetime import UTC, datetime

    from cityloop.anchoring import service as anchoring

    settings = get_settings()
    url = _use_database(db)
    key = anchoring.load_or_make_key(settings.anchor_signing_key, make=True)
    session = _session(url)
    try:
        made = anchoring.write_anchor(
            session, anchoring.FileAnchorLog(settings.anchor_log_dir), key, now=datetime.now(UTC)
        )
    finally:
        _close(session)
    console.print(
        f"[green]anchor {made.number}[/green]: {made.count} timelines, root {made.root[:16]}…, "
        f"in {settings.anchor_log_dir}; public key {anchoring.public_hex(key.public_key())}",
        highlight=False,
    )


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
        console.print(
            f"[red]{f.flow} {f.case_id} event {f.seq} (id {f.event_id}): {f.problem}[/red]"
        )
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


@app.command("import-history")
def import_history(
    file: Annotated[Path, typer.Argument(help="CSV export: text, class_code, department, …")],
    db: DbOption = None,
    create_departments: Annotated[
        bool, typer.Option("--create-departments", help="create departments the city lacks")
    ] = False,
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="import the good rows, list the refused")
    ] = False,
) -> None:
    """Import an old system's cases (CSV, UTF-8 or GB18030) to learn from; all or nothing
    unless --skip-bad."""
    from cityloop.errors import ValidationFailed
    from cityloop.kit.clock import Clock
    from cityloop.learning.service import import_history as run_import
    from cityloop.places.service import PlaceIndex

    url = _use_database(db)
    if not file.is_file():
        console.print(f"[red]no such file:[/red] {file}")
        raise typer.Exit(2)
    session = _session(url, write=True)
    try:
        places = PlaceIndex.load(session)
        with _progress_bar() as progress:
            report = run_import(
                session,
                file.read_bytes(),
                batch=file.name,
                now=Clock().now(),
                places=places,
                create_departments=create_departments,
                skip_bad=skip_bad,
                progress=progress,
            )
        for line, why in report.refused:
            console.print(f"[red]line {line}:[/red] {why}", highlight=False)
        if report.unknown_departments and not create_departments:
            console.print("[yellow]unknown departments[/yellow] (use --create-departments):")
            for name, n in sorted(report.unknown_departments.items()):
                console.print(f"  {name}: {n} rows", highlight=False)
        if report.refused and not skip_bad:
            session.rollback()
            console.print(
                f"[red]nothing imported:[/red] {len(report.refused)} rows refused "
                "(fix them, or --skip-bad to import the others)"
            )
            raise typer.Exit(1)
        session.commit()
    except ValidationFailed as exc:
        session.rollback()
        console.print(f"[red]{exc.field}:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        _close(session)
    for name in report.created_departments:
        console.print(f"created department {name}", highlight=False)
    console.print(f"[green]{report.imported} rows imported[/green], {len(report.refused)} refused")


@app.command()
def learn(db: DbOption = None) -> None:
    """Train the class and department suggester from the imported history and the closed
    cases; print the held-out figures and keep the model as a new version."""
    from cityloop.errors import ValidationFailed
    from cityloop.kit.clock import Clock
    from cityloop.learning.service import learn as run_learn

    url = _use_database(db)
    session = _session(url, write=True)
    try:
        with _progress_bar() as progress:
            model = run_learn(session, now=Clock().now(), progress=progress)
        session.commit()
    except ValidationFailed as exc:
        session.rollback()
        console.print(f"[red]not trained:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        _close(session)
    metrics = model.metrics
    departments = {str(d.id): d.name for d in _departments(url)}
    console.print(
        f"[green]model {model.version}[/green]: trained on {model.trained_on} cases in "
        f"{model.seconds:.1f} s; held out {metrics['n']}"
    )
    for head in ("class", "department"):
        if head in metrics:
            figures = metrics[head]
            console.print(
                f"{head}: accuracy {figures['accuracy']:.3f}, macro-F1 {figures['macro_f1']:.3f}"
            )
            for label, f1 in sorted(figures["per_label"].items()):
                name = departments.get(label) if head == "department" else None
                shown = f"{label} {name}" if name else label
                console.print(f"  {shown}: F1 {f1:.3f}", highlight=False)
