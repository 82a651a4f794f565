"""Fixtures of the evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from cityloop.places.service import PlaceIndex
from tests.evaluation.helpers import Story


@pytest.fixture
def story(city_session: Session, city_places: PlaceIndex, tmp_path: Path) -> Story:
    return Story(city_session, city_places, tmp_path / "media")
