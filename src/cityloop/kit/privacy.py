"""Masking personal data for the people who must not see it."""

from __future__ import annotations

# The desks that call reporters back see their numbers; nobody else does.
SEES_REPORTER_CONTACT = frozenset({"operator", "shiftlead", "admin"})


def mask_phone(phone: str | None) -> str | None:
    """13812345678 → 138****5678."""
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    return digits[:3] + "*" * max(len(digits) - 7, 1) + digits[-4:]


def mask_name(name: str | None) -> str | None:
    """陈小明 → 陈**."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)
