"""Fixtures for Open311: the demo partners (the demo city's Open311 key), a point in the city,
and the app served on a real port for unmodified Open311 client libraries."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import pytest
import uvicorn
from sqlalchemy.orm import Session

from cityloop.partners import demo
from cityloop.partners.service import forget_keys
from tests.cases.helpers import YINGCUI, point_in
from tests.conftest import TZ

OPEN311_KEY = "demo-open311-key"


@pytest.fixture
def partner_keys(city_session: Session) -> dict[str, str]:
    demo.build(city_session, now=datetime(2026, 8, 1, 9, 0, tzinfo=TZ))
    city_session.commit()
    # Tests roll their partners back: keys remembered from an earlier test must not linger.
    forget_keys()
    return {code: key for code, _name, _source, key in demo.DEMO_PARTNERS}


@pytest.fixture
def spot(city_places: Any) -> tuple[float, float]:
    """(lat, long) in 盈翠社区, the way Open311 orders them."""
    lon, lat = point_in(city_places, YINGCUI)
    return lat, lon


@contextmanager
def _serving(app: Any) -> Iterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(client: Any) -> Callable[[], AbstractContextManager[str]]:
    """Serve the test app (same database transaction as `client`) on 127.0.0.1."""
    return lambda: _serving(client.app)
