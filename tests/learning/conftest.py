from __future__ import annotations

from collections.abc import Iterator

import pytest

from cityloop.learning import service


@pytest.fixture(autouse=True)
def _no_model_between_tests() -> Iterator[None]:
    # A test's model is rolled back behind the process's cache.
    service.forget_models()
    yield
    service.forget_models()
