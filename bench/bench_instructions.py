"""Benchmark: machine instructions of the server per report (issue 4), for comparing builds on a
machine whose speed moves from run to run.

The app runs in one process, driven through ASGI with no network and no client (the thread
hops to the pool are real), on PostgreSQL with a city that has a year of history. It posts
`--warmup` reports, then `--requests` counted ones under `valgrind --tool=callgrind` with
instrumentation switched on for the counted ones only. Counts the server's process alone (not
PostgreSQL's) and repeats within ~1 % for the same build; the time per report is printed too,
but under valgrind it is ~50 times the real one.

Run: .venv/bin/python bench/bench_instructions.py [--endpoint reports|inspector|open311]
     [--requests 100] [--history 20000]
To compare with another build: check it out in a worktree and run the same command with
PYTHONPATH=<worktree>/src (the city is built anew for each run, from the same seed).
Needs valgrind (Debian: apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

DEMO_PASSWORD = "cityloop-demo"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--endpoint", choices=("reports", "inspector", "open311"), default="reports"
    )
    parser.add_argument("--requests", type=int, default=100, help="counted reports")
    parser.add_argument("--warmup", type=int, default=200, help="reports before counting")
    parser.add_argument("--history", type=int, default=20_000)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # the process under valgrind
    return parser.parse_args()


def main() -> None:
    args = parse()
    if args.child:
        asyncio.run(child(args, Path(args.child)))
        return
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_intake import pg_url, prepare

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = pg_url(args.pg_url, "cityloop_bench_instructions")
        print(f"building the city ({args.history:,} cases of history) ...", flush=True)
        points = prepare(url, work / "media", args.history)
        (work / "points.json").write_text(json.dumps(points))
        env = {
            **os.environ,
            "CITYLOOP_DATABASE_URL": url,
            "CITYLOOP_SECRET_KEY": secrets.token_urlsafe(32),
            "CITYLOOP_DATA_DIR": str(work),
        }
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={work / 'callgrind.out'}",
            sys.executable,
            __file__,
            *("--endpoint", args.endpoint, "--requests", str(args.requests)),
            *("--warmup", str(args.warmup), "--child", str(work)),
        ]
        print("starting the app under valgrind (a minute or two) ...", flush=True)
        log = (work / "child.log").open("wb")
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        _wait_for(work / "ready", proc, work)
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, **_QUIET)
        (work / "go").touch()
        _wait_for(work / "done", proc, work)
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, **_QUIET)
        (work / "end").touch()
        proc.wait(timeout=600)
        counted = json.loads((work / "done").read_text())
        total = 0
        for out in work.glob("callgrind.out*"):
            for line in out.read_text(errors="replace").splitlines():
                if line.startswith("totals:"):  # "summary:" counts from the start, here 0
                    total += int(line.split()[1])
                    break
    per_report = total / args.requests / 1e6
    print(
        f"{args.endpoint}: {per_report:.2f} M instructions a report "
        f"({args.requests} counted; answers {counted['statuses']}; "
        f"{counted['cpu_ms']:.0f} ms of CPU a report under valgrind)"
    )


_QUIET: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def _wait_for(marker: Path, proc: subprocess.Popen[bytes], work: Path) -> None:
    while not marker.exists():
        if proc.poll() is not None:
            sys.exit("the app stopped:\n" + (work / "child.log").read_text()[-3000:])
        time.sleep(0.5)


async def child(args: argparse.Namespace, work: Path) -> None:
    from cityloop.app import create_server_app

    app = create_server_app()
    points = [tuple(p) for p in json.loads((work / "points.json").read_text())]
    rng = random.Random(7)
    token = ""
    if args.endpoint == "inspector":
        form = urllib.parse.urlencode({"username": "inspector", "password": DEMO_PASSWORD})
        status, body = await _call(
            app, "/api/v1/auth/token", form.encode(), "application/x-www-form-urlencoded", ()
        )
        if status != 200:
            raise SystemExit(f"login failed: {status} {body[:200]!r}")
        token = json.loads(body)["access_token"]

    def request() -> tuple[str, bytes, str, tuple[tuple[bytes, bytes], ...]]:
        lon, lat = rng.choice(points)
        code = rng.choice(("06010", "06042", "09006", "09010", "07001", "06036", "06028"))
        if args.endpoint == "open311":
            form = {
                "api_key": "demo-open311-key",
                "service_code": code,
                "lat": f"{lat:.6f}",
                "long": f"{lon:.6f}",
                "description": "指令计数 instruction count",
            }
            body = urllib.parse.urlencode(form).encode()
            return "/open311/v2/requests.json", body, "application/x-www-form-urlencoded", ()
        report: dict[str, Any] = {"lon": lon, "lat": lat, "description": "指令计数"}
        headers: tuple[tuple[bytes, bytes], ...] = ()
        if args.endpoint == "inspector":  # a street lamp: filed and dispatched in the request
            report |= {"source": "inspector", "class_code": "01037"}
            headers = ((b"authorization", f"Bearer {token}".encode()),)
        else:
            report |= {"source": "app", "class_code": code}
        return "/api/v1/reports", json.dumps(report).encode(), "application/json", headers

    for _ in range(args.warmup):
        await _call(app, *request())
    (work / "ready").touch()
    while not (work / "go").exists():
        await asyncio.sleep(0.2)
    statuses: dict[int, int] = {}
    started = time.process_time()
    for _ in range(args.requests):
        status, _body = await _call(app, *request())
        statuses[status] = statuses.get(status, 0) + 1
    cpu_ms = (time.process_time() - started) / args.requests * 1000
    (work / "done").write_text(json.dumps({"statuses": statuses, "cpu_ms": cpu_ms}))
    while not (work / "end").exists():
        await asyncio.sleep(0.2)


async def _call(
    app: Any, path: str, body: bytes, content_type: str, headers: tuple[tuple[bytes, bytes], ...]
) -> tuple[int, bytes]:
    """One POST through the ASGI app, as uvicorn would hand it over."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    answer: dict[str, Any] = {"status": 0, "body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return int(answer["status"]), bytes(answer["body"])


if __name__ == "__main__":
    main()
