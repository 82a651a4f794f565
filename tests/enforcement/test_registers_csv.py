"""The registers imported from CSV (R-LE-2) by `cityloop import-enforcement`, on a migrated
new database: laws and articles, violations citing them, discretion tiers; a bad row imports
nothing and says which line and column."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cityloop.cli import app
from cityloop.db import make_engine
from cityloop.enforcement.importing import DATA
from cityloop.enforcement.models import DiscretionTier, LawArticle, Violation


def test_registers_import_from_csv_and_a_bad_row_imports_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'city.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["migrate", "--db", url]).exit_code == 0
    for register, name in (
        ("laws", "laws"),
        ("violations", "violations"),
        ("tiers", "discretion_tiers"),
    ):
        result = runner.invoke(
            app,
            ["import-enforcement", str(DATA / f"{name}.csv"), "--register", register, "--db", url],
        )
        assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "violation_code,tier,conditions,fine_min,fine_max\nSR-ZT-01,minor,x,10,5\n",
        encoding="utf-8",
    )
    refused = runner.invoke(
        app, ["import-enforcement", str(bad), "--register", "tiers", "--db", url]
    )
    assert refused.exit_code == 2 and "line 2" in refused.output and "fine_min" in refused.output
    engine = make_engine(url)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(LawArticle)) >= 20
        violation = session.scalar(select(Violation).where(Violation.code == "GH-WJ-01"))
        assert violation is not None and violation.class_codes == ["06001"]
        minor = session.scalar(
            select(DiscretionTier).where(
                DiscretionTier.standard_id == violation.standard_id,
                DiscretionTier.tier == "general",
            )
        )
        assert minor is not None and (minor.percent_min, minor.percent_max) == (5, 10)
        untouched = session.scalars(
            select(DiscretionTier.fine_max).where(DiscretionTier.conditions == "x")
        )
        assert list(untouched) == []
    engine.dispose()
