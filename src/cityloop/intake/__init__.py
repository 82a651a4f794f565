"""Intake: every way a problem arrives becomes a Report and goes through `receive()`, the one
path by which a case is born (idempotency, location, class, initial state by source). This
first cut carries the minimal report API; the channels (inspector app, citizens, hotline,
partners, Open311, cameras, sensors) are built on it (R-IN-*)."""
