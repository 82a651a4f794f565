"""Tables of the places domain: the region tree and the unit grids.

Geometry is GeoJSON text (WGS-84) and centroids are plain floats: no spatial extension on
either backend. Spatial queries happen in memory through :class:`PlaceIndex`.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cityloop.db import Base

REGION_LEVELS = ("city", "district", "street", "community", "resp_grid")


class Region(Base):
    """One node of the region tree, from the city down to a responsibility grid (责任网格).

    Codes: city and district 6 digits (adcode), street 9, community 12, responsibility grid
    12 + ``R`` + 2-digit sequence (e.g. ``350203011003R01``).
    """

    __tablename__ = "regions"
    __table_args__ = (
        CheckConstraint(
            "level IN ('city', 'district', 'street', 'community', 'resp_grid')", name="level"
        ),
    )

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str | None] = mapped_column(String(100), default=None)
    parent_code: Mapped[str | None] = mapped_column(
        String(16), ForeignKey("regions.code"), index=True, default=None
    )
    geometry: Mapped[str] = mapped_column(Text)
    centroid_lon: Mapped[float] = mapped_column(Float)
    centroid_lat: Mapped[float] = mapped_column(Float)
    area_km2: Mapped[float] = mapped_column(Float)

    def __repr__(self) -> str:
        return f"Region({self.code!r}, {self.level!r}, {self.name!r})"


class UnitGrid(Base):
    """A unit grid (万米单元网格): the smallest cell a case is filed against."""

    __tablename__ = "unit_grids"

    code: Mapped[str] = mapped_column(String(15), primary_key=True)
    community_code: Mapped[str] = mapped_column(String(16), ForeignKey("regions.code"), index=True)
    resp_grid_code: Mapped[str | None] = mapped_column(
        String(16), ForeignKey("regions.code"), index=True, default=None
    )
    geometry: Mapped[str] = mapped_column(Text)
    centroid_lon: Mapped[float] = mapped_column(Float)
    centroid_lat: Mapped[float] = mapped_column(Float)

    def __repr__(self) -> str:
        return f"UnitGrid({self.code!r})"
