"""Places: where things are.

Owns the region tree — city → district → street → community → responsibility grid (责任网格) —
and the unit grids (万米单元网格, about 100 m × 100 m, 15-digit codes: 6-digit district adcode +
3-digit street + 3-digit community + 3-digit sequence, per GB/T 30428.1 and GB/T 47678.3), their
tables (``regions``, ``unit_grids``), GeoJSON import, and the one point index
(:class:`~cityloop.places.service.PlaceIndex`) that turns a WGS-84 lon/lat into a unit grid and
its chain of regions. Geometry is stored as GeoJSON text in WGS-84 so the same schema runs on
SQLite and on PostgreSQL without PostGIS.
"""
