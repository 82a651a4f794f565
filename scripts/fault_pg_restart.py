"""PostgreSQL restarting under load, as an operator would try it (issue 7).

Starts a private PostgreSQL cluster in a temporary directory (never the shared server on
5432; as root its commands run as the postgres user), builds the demo city in it, runs
`cityloop serve --workers 2` and `cityloop worker` on it, and posts reports from several
clients, each under its own Idempotency-Key. Meanwhile the cluster is restarted with
`pg_ctl -m immediate` (a crash: recovery from the WAL on start) one or more times. Then every
report that got no 2xx is sent again under the same key, and the checks run: no 500s (requests
during the outage get 503), every acknowledged report stored once under the ticket it was
answered with, none half-written, every timeline's hash chain intact, the worker still up.

Run: .venv/bin/python scripts/fault_pg_restart.py [--threads 8] [--restarts 2] [--down 2]
Prints the numbers as JSON; exits 1 when a check fails. Everything stays on 127.0.0.1 and
the temporary cluster is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.harness import pg_restart_under_load, postgres_bin  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8, help="concurrent clients")
    parser.add_argument("--restarts", type=int, default=2, help="how many crashes")
    parser.add_argument("--down", type=float, default=2.0, help="seconds down each time")
    parser.add_argument("--before", type=float, default=1.0, help="load seconds before each")
    parser.add_argument("--after", type=float, default=3.0, help="load seconds after the last")
    args = parser.parse_args()
    if postgres_bin() is None:
        print("needs PostgreSQL's server binaries under /usr/lib/postgresql", file=sys.stderr)
        return 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cityloop-fault-") as workdir:
        try:
            numbers = pg_restart_under_load(
                Path(workdir),
                threads=args.threads,
                before=args.before,
                down=args.down,
                after=args.after,
                restarts=args.restarts,
                say=lambda line: print(f"[{time.monotonic() - started:6.1f} s] {line}"),
            )
        except AssertionError as exc:
            print(f"FAILED: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
