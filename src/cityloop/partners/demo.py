"""Demo partners for the demo city. The keys are demo-only and documented in
docs/channels/partners.md, like the demo passwords; nothing here prints them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityloop.partners.models import Partner
from cityloop.partners.service import create_partner, forget_keys

# (code, name, source, demo key)
DEMO_PARTNERS = (
    ("open311-demo", "Open311 演示客户端", "open311", "demo-open311-key"),
    ("12345-xiamen", "厦门市12345政务服务便民热线", "partner_12345", "demo-12345-key"),
    ("110-xiamen", "厦门市公安局110指挥中心", "partner_110", "demo-110-key"),
    ("public-safety-xiamen", "厦门市公共安全管理平台", "public_safety", "demo-public-safety-key"),
)


def build(session: Session, *, now: datetime | None = None) -> dict[str, int]:
    """Register the demo partners (skipping any already there); the caller commits."""
    now = now or datetime.now(UTC)
    forget_keys()
    existing = set(session.scalars(select(Partner.code)))
    added = 0
    for code, name, source, key in DEMO_PARTNERS:
        if code in existing:
            continue
        create_partner(session, code=code, name=name, source=source, api_key=key, now=now)
        added += 1
    return {"partners": added}
