"""A Merkle root over a sorted list of leaves (pure; no database)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"cityloop:empty").hexdigest()


def leaf(flow: str, record_id: int, seq: int, head: str) -> bytes:
    # Prefixed, so a leaf can never be mistaken for an inner node (second-preimage).
    return hashlib.sha256(f"L|{flow}|{record_id}|{seq}|{head}".encode()).digest()


def merkle_root(leaves: Sequence[bytes]) -> str:
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [
            hashlib.sha256(b"N|" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level), 2)
        ]
    return level[0].hex()
