"""PostgreSQL restarting under load (R-IN-1, R-HD-4): a private cluster (the shared server on
5432 is not ours to restart) crashes with `pg_ctl -m immediate` and comes back while clients
post reports and the worker sweeps. Requests that meet the outage get a clean 503, never a
500; the worker stays up; after the restart every acknowledged report is there once, and the
ones sent again under their key are there once too."""

from __future__ import annotations

import pytest

from tests.faults.harness import pg_restart_under_load, postgres_bin

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres_bin() is None, reason="needs PostgreSQL's server binaries"),
]


def test_postgresql_restarting_under_load(tmp_path):
    numbers = pg_restart_under_load(tmp_path, threads=8, restarts=2, say=print)
    print(numbers)
    assert numbers["answered_500"] == 0 and numbers["answered_503"] > 0
    assert numbers["duplicates_found"] == 0 and numbers["half_written"] == 0
    assert numbers["worker_alive"] == 1 and numbers["worker_passes_failed"] >= 1
