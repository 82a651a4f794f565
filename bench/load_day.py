"""Load harness: a day of the demo city replayed, compressed, against `cityloop serve` (issue 7).

The day's reports follow the hourly curve of a city-management centre (night trough, the
morning peak at 9–11, the afternoon peak at 15–17) and its source mix (grid inspectors most,
then citizens' WeChat/app/web, hotline, 12345 transfers, leaders). The curve is scaled so its
peak hour runs at `--peak-rate` reports per second and the 24 hours are squeezed into
`--seconds`. Each report is sent on its schedule (open loop: a slow server makes requests late,
and the lateness counts in the latency). Staff work the cases behind it: about half of the
inspectors' reports are filed by the operator, dispatched by the dispatcher and answered by
the department, each action paced a little after the previous one, so the run also measures
actions per second on cases that are being reported at the same time.

Reported: reports/s and actions/s sustained, p50/p99 latency of each, errors by status, the
server's RSS, and the raw INSERT+COMMIT rate of the same database measured in the same run.

Run: .venv/bin/python bench/load_day.py [--db sqlite,postgresql] [--seconds 60]
     [--peak-rate 200] [--workers 2]
Bounded: every loop ends with the schedule; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_intake import (  # a sibling script, not a package
    CLASSES,
    free_port,
    login,
    pg_url,
    prepare,
    raw_insert_rate,
    rss_mb,
    start_server,
)

# Share of the day's reports in each hour (0–23): a Chinese city-management centre's day.
HOURLY = (
    0.4, 0.2, 0.2, 0.2, 0.3, 0.6, 1.5, 3.5, 6.5, 8.0, 8.0, 6.5,
    4.0, 4.5, 6.0, 7.0, 7.0, 6.0, 4.5, 3.5, 3.0, 2.5, 1.5, 0.8,
)  # fmt: skip
# (source, who sends it, share): inspectors find most problems (seed: 监督员上报 ≈ 70 %).
SOURCE_MIX = (
    ("inspector", "inspector", 0.62),
    ("wechat", None, 0.12),
    ("app", None, 0.06),
    ("web", None, 0.04),
    ("hotline_12345", "operator", 0.08),
    ("partner_12345", "operator", 0.05),
    ("leader", "leader", 0.03),
)
WORKED_SHARE = 0.5  # of inspectors' reports, worked through file → dispatch → result here
STEP_DELAY = 0.5  # seconds between one staff action and the next on a case
TOKEN_USERS = ("inspector", "operator", "leader", "dispatcher", "admin")
# Who takes each step. The department step is taken as admin: the demo's handlers each see
# only their own district, and the replay's cases fall all over the city.
ACTOR_OF = {"file": "operator", "dispatch": "dispatcher", "submit_result": "admin"}


def schedule(seconds: float, peak_rate: float, seed: int) -> list[tuple[float, str]]:
    """(offset in seconds, source) of every report of the compressed day."""
    rng = random.Random(seed)
    hour_seconds = seconds / 24
    peak = max(HOURLY)
    sources = [s for s, _who, _share in SOURCE_MIX]
    weights = [share for _s, _who, share in SOURCE_MIX]
    out: list[tuple[float, str]] = []
    for hour, weight in enumerate(HOURLY):
        rate = peak_rate * weight / peak
        t = hour * hour_seconds
        end = t + hour_seconds
        while rate > 0:
            t += rng.expovariate(rate)
            if t >= end:
                break
            out.append((t, rng.choices(sources, weights)[0]))
    return out


def _jpeg() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "gray").save(buffer, "JPEG")
    return buffer.getvalue()


def _multipart(name: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "cityloop-bench-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def _post(
    conn: http.client.HTTPConnection,
    path: str,
    body: dict[str, Any] | tuple[bytes, str],
    token: str | None,
    key: str | None = None,
) -> tuple[int, dict[str, Any]]:
    if isinstance(body, tuple):
        payload, ctype = body
    else:
        payload, ctype = json.dumps(body).encode(), "application/json"
    headers = {"Content-Type": ctype}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    conn.request("POST", path, body=payload, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {"raw": raw[:200].decode("utf-8", "replace")}
    return response.status, data if isinstance(data, dict) else {"data": data}


def client_process(
    port: int,
    plan: list[tuple[float, str]],
    points: list[tuple[float, float]],
    tokens: dict[str, str],
    start_at: float,
    threads: int,
    seed: int,
    out: mp.Queue,  # type: ignore[type-arg]
) -> None:
    """Sends its share of the schedule from `threads` connections; each thread also works
    the cases its own reports opened, between reports, when their next step is due."""
    who = {source: sender for source, sender, _share in SOURCE_MIX}
    photo = _jpeg()
    lock = threading.Lock()
    report_ms: list[float] = []
    action_ms: list[float] = []
    failures: Counter[str] = Counter()
    counts: Counter[str] = Counter()

    def run(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = plan[index::threads]
        pending: list[tuple[float, int, list[tuple[str, dict[str, Any]]]]] = []

        def send(
            path: str, body: Any, token: str | None, key: str | None = None
        ) -> tuple[int, dict[str, Any]]:
            # The server closes a keep-alive connection idle for 5 s (the night's trough): a
            # request carrying an idempotency key is sent again on a new connection.
            nonlocal conn
            for attempt in (1, 2):
                try:
                    return _post(conn, path, body, token, key)
                except OSError as exc:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    if key is None or attempt == 2:
                        return 0, {"error": type(exc).__name__}
            raise AssertionError("unreachable")

        def work_due(until: float) -> None:
            while pending and pending[0][0] <= min(until, time.time()):
                due, case_id, steps = pending.pop(0)
                action, payload = steps[0]
                started = time.time()
                token = tokens[ACTOR_OF[action]]
                if action == "submit_result":  # the department's photo of the result
                    status, media = send("/api/v1/media", _multipart("file", "r.jpg", photo), token)
                    if status != 201:
                        with lock:
                            failures[f"media {status} {str(media)[:100]}"] += 1
                        continue
                    payload = {**payload, "photos": [media["id"]]}
                status, data = send(f"/api/v1/cases/{case_id}/actions/{action}", payload, token)
                took = (time.time() - max(due, start_at)) * 1000
                with lock:
                    if status == 200:
                        counts["actions"] += 1
                        action_ms.append(max(took, (time.time() - started) * 1000))
                    else:
                        failures[f"{action} {status} {str(data)[:100]}"] += 1
                if status == 200 and len(steps) > 1:
                    pending.append((time.time() + STEP_DELAY, case_id, steps[1:]))
                    pending.sort(key=lambda item: item[0])

        for offset, source in mine:
            due = start_at + offset
            while time.time() < due:
                work_due(due)
                pause = due - time.time()
                if pause > 0:
                    time.sleep(min(pause, 0.05))
            lon, lat = rng.choice(points)
            body = {
                "source": source,
                "class_code": rng.choice(CLASSES),
                "description": "日常上报 replay of a day",
                "lon": lon,
                "lat": lat,
            }
            sender = who[source]
            status, data = send(
                "/api/v1/reports",
                body,
                tokens[sender] if sender else None,
                key=f"day-{seed}-{index}-{offset:.6f}",
            )
            took = (time.time() - due) * 1000
            with lock:
                if status in (200, 201):
                    counts["reports"] += 1
                    counts[f"state:{data.get('state')}"] += 1
                    report_ms.append(took)
                else:
                    failures[f"report {status} {str(data)[:100]}"] += 1
            if (
                status == 201
                and data.get("state") == "pending_filing"
                and rng.random() < WORKED_SHARE
            ):
                steps: list[tuple[str, dict[str, Any]]] = [
                    ("file", {}),
                    ("dispatch", {}),
                    ("submit_result", {"result": "已清理 cleaned", "method": "service"}),
                ]
                pending.append((time.time() + STEP_DELAY, int(data["id"]), steps))
        work_due(float("inf"))  # the day is over: finish the cases still in hand

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    out.put((report_ms, action_ms, dict(failures), dict(counts)))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def replay(
    port: int,
    points: list[tuple[float, float]],
    seconds: float,
    peak_rate: float,
    threads: int,
) -> dict[str, Any]:
    plan = schedule(seconds, peak_rate, seed=1)
    tokens = {user: login(port, user) for user in TOKEN_USERS}
    processes = 2
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    start_at = time.time() + 1.0
    procs = [
        mp.Process(
            target=client_process,
            args=(port, plan[i::processes], points, tokens, start_at, threads, i, queue),
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 600) for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.time() - start_at
    report_ms = [v for r in results for v in r[0]]
    action_ms = [v for r in results for v in r[1]]
    failures: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for r in results:
        failures.update(r[2])
        counts.update(r[3])
    return {
        "scheduled": len(plan),
        "elapsed_s": round(elapsed, 1),
        "reports": counts["reports"],
        "actions": counts["actions"],
        "reports_per_s": counts["reports"] / elapsed,
        "actions_per_s": counts["actions"] / elapsed,
        "peak_rate": peak_rate,
        "report_p50_ms": percentile(report_ms, 0.5),
        "report_p99_ms": percentile(report_ms, 0.99),
        "action_p50_ms": percentile(action_ms, 0.5),
        "action_p99_ms": percentile(action_ms, 0.99),
        "errors": sum(failures.values()),
        "failures": dict(failures.most_common(8)),
        "states": {k[6:]: v for k, v in counts.items() if k.startswith("state:")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=60.0, help="the compressed day")
    parser.add_argument("--peak-rate", type=float, default=200.0, help="reports/s at the peak")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--history", type=int, default=50_000, help="cases already in the city, over a year"
    )
    parser.add_argument("--threads", type=int, default=16, help="connections per client process")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", type=Path, help="append the results to this file")
    args = parser.parse_args()
    print(
        f"a day in {args.seconds:g} s, peak {args.peak_rate:g} reports/s, "
        f"{args.workers} server workers, 2×{args.threads} client connections"
    )
    for backend in args.db.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            url = (
                f"sqlite:///{Path(tmp) / 'day.db'}"
                if backend == "sqlite"
                else pg_url(args.pg_url, "cityloop_bench_day")
            )
            points = prepare(url, Path(tmp) / "media", args.history)
            raw = raw_insert_rate(url, 16, 5.0)
            port = free_port()
            server = start_server(url, port, args.workers, Path(tmp))
            try:
                result = replay(port, points, args.seconds, args.peak_rate, args.threads)
                result["rss_mb"] = round(rss_mb(server.pid))
            finally:
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait(timeout=15)
            result.update(backend=backend, raw_inserts_per_s=round(raw))
            result["ratio"] = round(result["reports_per_s"] / raw, 3)
            print(
                f"{backend}: {result['reports']} reports ({result['reports_per_s']:.1f}/s, "
                f"ratio {result['ratio']} of raw {raw:.0f}/s) and {result['actions']} actions "
                f"({result['actions_per_s']:.1f}/s) in {result['elapsed_s']} s; "
                f"report p50 {result['report_p50_ms']:.0f} ms p99 {result['report_p99_ms']:.0f} "
                f"ms; action p50 {result['action_p50_ms']:.0f} ms p99 "
                f"{result['action_p99_ms']:.0f} ms; errors {result['errors']}; "
                f"RSS {result['rss_mb']} MB",
                flush=True,
            )
            for failure, count in result["failures"].items():
                print(f"  error x{count}: {failure}")
            print(f"  states: {result['states']}")
            if args.json:
                with args.json.open("a") as fh:
                    fh.write(json.dumps(result, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
