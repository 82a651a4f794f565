"""Keep the demo city's map alive: every demo vehicle speaks JT/T 808 to the gateway
(registration, authentication, a 0x0200 location every --interval seconds, sweepers moving
along their road segments at working speed, the others driving), and the demo inspectors go
on duty and report positions over HTTP like the app.

Run (with `cityloop demo` serving on :8000 and `cityloop jt808-gateway` on :7808):
    .venv/bin/python scripts/fleet_simulator.py --db sqlite:///cityloop-demo.db \
        [--gateway 127.0.0.1:7808] [--api http://127.0.0.1:8000] [--interval 10] [--minutes 60]
Everything talks to 127.0.0.1 by default; Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.db import make_engine
from cityloop.fleet import jt808
from cityloop.fleet.models import RoadSegment, Vehicle
from cityloop.models import load_all_models
from cityloop.org.models import User
from cityloop.places.service import PlaceIndex

PASSWORD = "cityloop-demo"


def plan(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    load_all_models()
    engine = make_engine(url)
    with Session(engine) as session:
        places = PlaceIndex.load(session)
        routes: dict[int, list[list[float]]] = {}
        for seg in session.scalars(select(RoadSegment).order_by(RoadSegment.code)):
            if seg.vehicle_id is not None:
                routes.setdefault(seg.vehicle_id, []).extend(seg.coordinates)
        vehicles = [
            {
                "phone": v.terminal_phone,
                "plate": v.plate,
                "kind": v.kind,
                "route": routes.get(v.id) or [],
            }
            for v in session.scalars(select(Vehicle).order_by(Vehicle.id))
        ]
        people = []
        for user in session.scalars(select(User).where(User.role == "inspector")):
            grid = next((str(c) for c in user.grid_codes or []), None)
            centre = None
            if grid:
                region = places.region(grid)
                if region is not None:
                    point = region.geometry.representative_point()
                    centre = (point.x, point.y)
            if centre is not None:
                people.append({"username": user.username, "centre": centre})
    engine.dispose()
    return vehicles, people


async def vehicle(spec: dict[str, Any], host: str, port: int, interval: float, stop: float) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    serial = 0
    buffer = bytearray()

    def send(msg_id: int, body: bytes) -> None:
        nonlocal serial
        serial += 1
        writer.write(jt808.encode(msg_id, body, phone=spec["phone"], serial=serial, version=None))

    async def answer() -> jt808.Message:
        while True:
            frames = jt808.split_frames(buffer)
            if frames:
                return jt808.decode(frames[0])
            chunk = await reader.read(4096)
            if not chunk:
                raise ConnectionError("gateway closed the connection")
            buffer.extend(chunk)

    reg = jt808.Registration(35, 200, "SIM", "SIM-808", spec["phone"][-7:], 1, spec["plate"])
    send(jt808.REGISTER, jt808.registration_body(reg, 2013))
    code = (await answer()).body[3:].decode("gbk")
    send(jt808.AUTHENTICATE, jt808.auth_body(code, 2013))
    await answer()
    rng = random.Random(spec["phone"])
    route = spec["route"] or [[118.09 + rng.random() * 0.08, 24.45 + rng.random() * 0.08]]
    lon, lat = route[0]
    step = 0
    heading = rng.random() * 2 * math.pi
    while time.monotonic() < stop:
        if spec["route"]:
            # Back and forth along the assigned segments at ~8 km/h (working speed).
            t = (step * interval * 8 / 3.6) / 400.0
            i = int(t) % max(1, len(route) - 1)
            frac = t - int(t)
            a, b = route[i], route[min(i + 1, len(route) - 1)]
            lon, lat = a[0] + (b[0] - a[0]) * frac, a[1] + (b[1] - a[1]) * frac
            speed = 8.0
        else:
            heading += rng.uniform(-0.5, 0.5)
            metres = interval * 30 / 3.6
            lon += metres * math.cos(heading) / 101_300
            lat += metres * math.sin(heading) / 110_540
            speed = 30.0
        send(jt808.LOCATION, jt808.location_body(lon, lat, datetime.now(UTC), speed_kmh=speed))
        await answer()
        step += 1
        await asyncio.sleep(interval)
    writer.close()


def _post(url: str, body: dict[str, Any], token: str | None = None, form: bool = False) -> Any:
    data = (urllib.parse.urlencode(body) if form else json.dumps(body)).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded" if form else "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "detail": exc.read().decode(errors="replace")}


async def inspector(spec: dict[str, Any], api: str, interval: float, stop: float) -> None:
    token = (
        await asyncio.to_thread(
            _post,
            f"{api}/api/v1/auth/token",
            {"username": spec["username"], "password": PASSWORD},
            None,
            True,
        )
    )["access_token"]
    await asyncio.to_thread(_post, f"{api}/api/v1/me/duty", {"status": "on"}, token)
    rng = random.Random(spec["username"])
    lon, lat = spec["centre"]
    while time.monotonic() < stop:
        lon += rng.uniform(-1, 1) * 0.0004
        lat += rng.uniform(-1, 1) * 0.0004
        fix = {"lon": lon, "lat": lat, "at": datetime.now(UTC).isoformat()}
        await asyncio.to_thread(_post, f"{api}/api/v1/me/positions", {"positions": [fix]}, token)
        await asyncio.sleep(interval)
    await asyncio.to_thread(_post, f"{api}/api/v1/me/duty", {"status": "off"}, token)


async def main(args: argparse.Namespace) -> None:
    vehicles, people = plan(args.db)
    host, _, port = args.gateway.partition(":")
    stop = time.monotonic() + args.minutes * 60
    print(f"{len(vehicles)} vehicles over JT/T 808 to {args.gateway}")
    print(f"{len(people)} inspectors over HTTP to {args.api}")
    await asyncio.gather(
        *(vehicle(v, host, int(port), args.interval, stop) for v in vehicles),
        *(inspector(p, args.api, args.interval, stop) for p in people),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the demo city's database URL (read only)")
    parser.add_argument("--gateway", default="127.0.0.1:7808")
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--minutes", type=float, default=60.0)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
