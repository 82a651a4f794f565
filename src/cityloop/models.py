"""Import every domain package's models so that Base.metadata knows the whole schema."""

from __future__ import annotations


def load_all_models() -> None:
    import cityloop.assets.models
    import cityloop.cases.models
    import cityloop.documents.models
    import cityloop.enforcement.models
    import cityloop.enforcement.service  # gives the case loop's open_enforcement its effect
    import cityloop.evaluation.models
    import cityloop.fleet.models
    import cityloop.geocoding.models
    import cityloop.intake.models
    import cityloop.iot.models
    import cityloop.learning.models
    import cityloop.media.models
    import cityloop.notifications.models
    import cityloop.org.models
    import cityloop.outbox.models
    import cityloop.partners.models
    import cityloop.places.models
    import cityloop.privacy.models
    import cityloop.taxonomy.models  # noqa: F401
