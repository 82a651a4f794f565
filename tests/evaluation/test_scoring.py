"""The evaluation model is data with defaults from the standards notes (R-EV-1, R-EV-2):
weights, count tables, grade bands, deductions. Pure: no database."""

from __future__ import annotations

import pytest

from cityloop.errors import ValidationFailed
from cityloop.evaluation import scoring


def test_composite_rescales_when_an_indicator_has_nothing_to_measure():
    model = scoring.default_model()
    full = {"valid_rate": 1.0, "missed_rate": 0.0, "verify_rate": 1.0, "check_rate": 0.5}
    assert scoring.composite("inspector", full, model) == pytest.approx(40 + 20 + 20 + 10)
    partial = {**full, "check_rate": None}
    assert scoring.composite("inspector", partial, model) == pytest.approx(100.0)
    assert scoring.composite("inspector", dict.fromkeys(full), model) is None


def test_grades_tables_and_deductions():
    model = scoring.default_model()
    assert [scoring.grade(s, model) for s in (100, 90, 89.99, 75, 60, 40, 39.9, 0)] == [
        "A",
        "A",
        "B",
        "B",
        "C",
        "D",
        "E",
        "E",
    ]
    operator = model["count_tables"]["operator.accepted"]
    assert [scoring.table_score(operator, n) for n in (0, 301, 501, 1201, 2001)] == [
        0,
        60,
        75,
        90,
        100,
    ]
    department = model["count_tables"]["department.case_count"]
    assert [scoring.table_score(department, n) for n in (10, 50, 51, 1000, 1001)] == [
        100,
        100,
        90,
        40,
        0,
    ]
    region = model["region_filing"]["1"]
    assert [scoring.table_score(region, n, strict=True) for n in (0, 2.9, 3, 8.9, 9)] == [
        100,
        90,
        75,
        40,
        0,
    ]
    assert scoring.deduction("department", 3, 4, model) == 5.0
    assert scoring.deduction("department", 30, 0, model) == 20.0  # capped
    assert scoring.monthly(9, 90) == 3.0
    assert scoring.area_class("350203011", {**model, "area_classes": {"": "1", "3502": "2"}}) == "2"


def test_ranks_share_places():
    rows = [
        {"key": "a", "score": 80},
        {"key": "b", "score": 90},
        {"key": "c", "score": 80},
        {"key": "d", "score": None},
    ]
    scoring.rank(rows)
    assert [(r["key"], r["rank"]) for r in rows] == [("b", 1), ("a", 2), ("c", 2), ("d", None)]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {
                "weights": {
                    "inspector": {
                        "valid_rate": 0.5,
                        "missed_rate": 0.5,
                        "verify_rate": 0.5,
                        "check_rate": 0,
                    }
                }
            },
            "weights.inspector",
        ),
        ({"weights": {"inspector": {"valid_rate": 1.0}}}, "weights.inspector"),
        ({"weights": {"janitor": {}}}, "weights.janitor"),
        ({"bands": [["A", 90], ["B", 95], ["E", 0]]}, "bands"),
        ({"bands": [["A", 90], ["E", 10]]}, "bands"),
        (
            {"count_tables": {"operator.accepted": [[10, 50], [5, 60], [None, 100]]}},
            "count_tables.operator.accepted",
        ),
        ({"count_tables": {"operator.accepted": [[10, 50]]}}, "count_tables.operator.accepted"),
        (
            {"deductions": {"department": {"overdue_open": -1, "closed_late": 0, "max": 5}}},
            "deductions.department",
        ),
        ({"area_classes": {"3502": "1"}}, "area_classes"),
        ({"area_classes": {"": "9"}}, "area_classes"),
        ({"public_sources": "public"}, "public_sources"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_model_is_refused_naming_the_field(changes, field):
    with pytest.raises(ValidationFailed) as caught:
        scoring.validate_model(changes)
    assert caught.value.field == field


def test_stored_keys_replace_defaults():
    model = scoring.merged_model({"bands": [["优", 85], ["良", 70], ["差", 0]], "unknown": 1})
    assert model["bands"][0] == ["优", 85] and "unknown" not in model
    assert scoring.grade(86, model) == "优"
