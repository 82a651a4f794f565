"""Alembic migrations of the whole schema (run by `cityloop migrate` and `cityloop demo`)."""
