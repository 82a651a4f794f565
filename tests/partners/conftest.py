"""Fixtures for partner platforms: the demo partners and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from cityloop.partners import demo
from cityloop.partners.service import forget_keys
from tests.conftest import TZ
from tests.outbox.receiver import Receiver, running_receiver


@pytest.fixture
def partner_keys(city_session: Session) -> dict[str, str]:
    """The demo partners (as `cityloop demo` registers them): partner code → API key."""
    from datetime import datetime

    demo.build(city_session, now=datetime(2026, 8, 1, 9, 0, tzinfo=TZ))
    city_session.commit()
    # Tests roll their partners back: keys remembered from an earlier test must not linger.
    forget_keys()
    return {code: key for code, _name, _source, key in demo.DEMO_PARTNERS}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running
