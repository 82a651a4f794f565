"""Peak memory of the server under decompression bombs (issue 23, item 2).

`cityloop serve` (one worker process) on the demo city in SQLite; 24 clients at once each
send an anonymous citizen report with 3 photos that are small files but huge images: a 170 KB
PNG of 6320 × 6320 RGBA (39.9 MP, under the 40 MP cap; 160 MB to decode in full) or a JPEG
of the same size. The server's resident memory is sampled every 20 ms; printed: the baseline
after a warm-up, the peak, and what stays after the burst. The per-address photo budget is
raised for the run (CITYLOOP_ANONYMOUS_MEGAPIXELS_PER_HOUR), so every photo reaches the
decoder instead of being refused by the budget first.

    .venv/bin/python bench/bench_bomb.py [--kind png|jpeg] [--clients 24] [--photos 3]
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import struct
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from pathlib import Path

from bench_intake import free_port, prepare, rss_mb, start_server  # runs from bench/

SIDE = 6320


def png_bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    packer = zlib.compressobj(9)
    row = b"\x00" * (SIDE * 4 + 1)
    idat = b"".join(packer.compress(row) for _ in range(SIDE)) + packer.flush()
    header = struct.pack(">IIBBBBB", SIDE, SIDE, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def jpeg_bomb() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (SIDE, SIDE), "gray").save(buffer, "JPEG", quality=10)
    return buffer.getvalue()


def multipart(fields: dict[str, str], files: list[tuple[str, bytes, str]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    for i, (name, data, kind) in enumerate(files):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="p{i}"\r\nContent-Type: {kind}\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post(port: int, body: bytes, content_type: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request(
            "POST", "/api/v1/citizen/reports", body=body, headers={"Content-Type": content_type}
        )
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("png", "jpeg"), default="png")
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--photos", type=int, default=3)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cityloop-bomb-"))
    url = f"sqlite:///{work / 'city.db'}"
    print(f"building the demo city into {url} ...", flush=True)
    points = prepare(url, work / "media", 0)
    bomb = png_bomb() if args.kind == "png" else jpeg_bomb()
    kind = "image/png" if args.kind == "png" else "image/jpeg"
    print(f"bomb: {args.kind}, {len(bomb) // 1024} KB, {SIDE}×{SIDE}", flush=True)
    os.environ["CITYLOOP_ANONYMOUS_MEGAPIXELS_PER_HOUR"] = "1000000"
    os.environ["CITYLOOP_ANONYMOUS_REPORTS_PER_HOUR"] = "1000000"
    port = free_port()
    server = start_server(url, port, 1, work)
    try:
        lon, lat = points[0]
        fields = {"description": "路面破损", "lon": str(lon), "lat": str(lat)}
        small = jpeg_small()
        for n in range(5):  # warm-up: every code path of a report with a photo loaded once
            body, ctype = multipart(
                {**fields, "phone": f"1380000{n:04d}"}, [("photos", small, "image/jpeg")]
            )
            post(port, body, ctype)
        time.sleep(1.0)
        baseline = rss_mb(server.pid)
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(server.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def client(n: int) -> None:
            body, ctype = multipart(
                {**fields, "phone": f"1390000{n:04d}"},
                [("photos", bomb, kind)] * args.photos,
            )
            status = post(port, body, ctype)
            with lock:
                statuses[status] += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.perf_counter() - started
        time.sleep(2.0)
        after = rss_mb(server.pid)
        done.set()
        sampler.join()
        print(
            f"{args.clients} clients × {args.photos} {args.kind} bombs in {took:.1f} s: "
            f"answers {dict(sorted(statuses.items()))}"
        )
        print(
            f"server RSS: baseline {baseline:.0f} MB, peak {peak:.0f} MB "
            f"(+{peak - baseline:.0f} MB), 2 s after {after:.0f} MB"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)


def jpeg_small() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1280, 960), "gray").save(buffer, "JPEG")
    return buffer.getvalue()


if __name__ == "__main__":
    main()
