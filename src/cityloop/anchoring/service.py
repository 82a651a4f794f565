"""Writing anchors and checking the database against them.

An anchor is one line of the anchor log: its number, time, the Merkle root over every
timeline head (flow, record, last seq, last hash), the count, the digest of the heads file
that lists those heads, the digest of the previous line (so lines cannot be dropped or
reordered unseen) and an Ed25519 signature over all of it. The signing key lives in a file
outside the database (`CITYLOOP_ANCHOR_KEY_FILE`); verification trusts only the public keys
it is given, never the key a line names.
"""

from __future__ import annotations

import base64
import fcntl
import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.orm import Session

from cityloop.anchoring.merkle import leaf, merkle_root

LOG_NAME = "anchors.jsonl"
_BATCH = 500


class AnchorError(Exception):
    """The anchor cannot be written or checked as asked (no key, unreadable log)."""


def timelines() -> Mapping[str, Any]:
    """Every flow's timeline model by flow name (the case loop's, the enforcement cases')."""
    from cityloop.models import load_all_models
    from cityloop.workflow.timeline import TIMELINES

    load_all_models()  # each flow's models register its timeline
    return {name: timeline.model for name, timeline in TIMELINES.items()}


@dataclass(frozen=True)
class Head:
    flow: str
    record_id: int
    seq: int
    hash: str

    def leaf(self) -> bytes:
        return leaf(self.flow, self.record_id, self.seq, self.hash)


def current_heads(session: Session) -> Iterator[Head]:
    """The last link of every record's chain, flow by flow, record by record."""
    for flow, model in sorted(timelines().items()):
        last = (
            select(model.case_id, func.max(model.seq).label("seq"))
            .group_by(model.case_id)
            .subquery()
        )
        rows = session.execute(
            select(model.case_id, model.seq, model.hash)
            .join(last, and_(model.case_id == last.c.case_id, model.seq == last.c.seq))
            .order_by(model.case_id)
            .execution_options(yield_per=5000)
        )
        for record_id, seq, head in rows:
            yield Head(flow, int(record_id), int(seq), str(head))


# -- keys ---------------------------------------------------------------------------------------


def load_or_make_key(path: Path, *, make: bool) -> Ed25519PrivateKey:
    if not path.exists():
        if not make:
            raise AnchorError(f"no anchor signing key at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
        return key
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise AnchorError(f"{path} is not an Ed25519 private key")
    return loaded


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def parse_public_keys(text: str) -> list[Ed25519PublicKey]:
    keys = []
    for item in text.replace(",", " ").split():
        try:
            keys.append(Ed25519PublicKey.from_public_bytes(bytes.fromhex(item)))
        except ValueError as exc:
            raise AnchorError(f"{item!r} is not a 32-byte Ed25519 public key in hex") from exc
    return keys


# -- the log ------------------------------------------------------------------------------------


class FileAnchorLog:
    """The anchor log as an append-only file of JSON lines, with each anchor's heads beside
    it. Another log (a second database, a write-once bucket) only needs these four methods."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOG_NAME

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        return [line for line in self.path.read_text(encoding="utf-8").splitlines() if line]

    def write_heads(self, name: str, data: bytes) -> None:
        target = self.folder / name
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())

    def read_heads(self, name: str) -> bytes | None:
        target = self.folder / name
        return target.read_bytes() if target.exists() else None

    def append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
            out.flush()
            os.fsync(out.fileno())

    def locked(self) -> _Lock:
        self.folder.mkdir(parents=True, exist_ok=True)
        return _Lock(self.folder / ".lock")


class _Lock:
    """One writer at a time across processes (two workers anchoring at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None

    def __enter__(self) -> _Lock:
        self.handle = self.path.open("a")
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *_: object) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def _canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _line_digest(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Anchor:
    number: int
    at: datetime
    root: str
    count: int


def write_anchor(
    session: Session, log: FileAnchorLog, key: Ed25519PrivateKey, *, now: datetime
) -> Anchor:
    """Anchor the heads as this transaction sees them (one snapshot)."""
    with log.locked():
        return _write_anchor_locked(session, log, key, now=now)


def _write_anchor_locked(
    session: Session, log: FileAnchorLog, key: Ed25519PrivateKey, *, now: datetime
) -> Anchor:
    heads = list(current_heads(session))
    lines = log.lines()
    number = len(lines) + 1
    body = "".join(
        json.dumps([h.flow, h.record_id, h.seq, h.hash], separators=(",", ":")) + "\n"
        for h in heads
    ).encode()
    packed = gzip.compress(body, mtime=0)
    heads_name = f"heads-{number:06d}.jsonl.gz"
    log.write_heads(heads_name, packed)
    fields = {
        "n": number,
        "at": now.astimezone(UTC).isoformat(),
        "root": merkle_root([h.leaf() for h in heads]),
        "count": len(heads),
        "heads_file": heads_name,
        "heads_sha256": hashlib.sha256(packed).hexdigest(),
        "prev": _line_digest(lines[-1]) if lines else None,
        "key": public_hex(key.public_key()),
    }
    fields["sig"] = base64.b64encode(key.sign(_canonical(fields))).decode()
    log.append(json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    return Anchor(number, now, str(fields["root"]), len(heads))


def anchor_if_due(
    session: Session, log: FileAnchorLog, key: Ed25519PrivateKey, *, now: datetime, every: timedelta
) -> Anchor | None:
    """The worker's daily anchor: written when the newest one is older than `every`."""
    with log.locked():
        lines = log.lines()
        if lines:
            last = datetime.fromisoformat(json.loads(lines[-1])["at"])
            if now - last < every:
                return None
        return _write_anchor_locked(session, log, key, now=now)


# -- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnchorFinding:
    anchor: int | None
    problem: str


def verify_anchors(
    session: Session, log: FileAnchorLog, trusted: Iterable[Ed25519PublicKey]
) -> tuple[int, list[AnchorFinding]]:
    """Check every anchor (signature by a trusted key, the chain of lines, its heads) and the
    database against the heads they fixed. Returns (anchors checked, findings)."""
    trusted = list(trusted)
    if not trusted:
        raise AnchorError("no trusted anchor public key to verify with")
    findings: list[AnchorFinding] = []
    anchored: dict[tuple[str, int, int], tuple[str, int]] = {}
    previous: str | None = None
    lines = log.lines()
    for position, line in enumerate(lines, start=1):
        try:
            fields = json.loads(line)
            signature = base64.b64decode(fields.pop("sig"))
            number = int(fields["n"])
        except (ValueError, KeyError, TypeError):
            findings.append(AnchorFinding(position, "line is not an anchor (unreadable)"))
            previous = _line_digest(line)
            continue
        if number != position or fields.get("prev") != previous:
            findings.append(
                AnchorFinding(number, "the log was cut, reordered or a line was inserted")
            )
        previous = _line_digest(line)
        if not _signed_by(trusted, signature, _canonical(fields)):
            findings.append(AnchorFinding(number, "signature invalid: forged or altered anchor"))
            continue
        packed = log.read_heads(str(fields["heads_file"]))
        if packed is None or hashlib.sha256(packed).hexdigest() != fields["heads_sha256"]:
            findings.append(AnchorFinding(number, "its heads file is missing or changed"))
            continue
        heads = [Head(f, int(r), int(s), str(h)) for f, r, s, h in _rows(packed)]
        if (
            merkle_root([h.leaf() for h in heads]) != fields["root"]
            or len(heads) != fields["count"]
        ):
            findings.append(AnchorFinding(number, "its heads do not give its signed root"))
            continue
        for head in heads:
            anchored.setdefault((head.flow, head.record_id, head.seq), (head.hash, number))
    findings.extend(_database_against(session, anchored))
    return len(lines), findings


def _signed_by(trusted: list[Ed25519PublicKey], signature: bytes, message: bytes) -> bool:
    for key in trusted:
        try:
            key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False


def _rows(packed: bytes) -> Iterator[list[Any]]:
    for raw in gzip.decompress(packed).splitlines():
        if raw:
            yield json.loads(raw)


def _database_against(
    session: Session, anchored: Mapping[tuple[str, int, int], tuple[str, int]]
) -> Iterator[AnchorFinding]:
    models = timelines()
    by_flow: dict[str, list[tuple[int, int]]] = {}
    for flow, record_id, seq in anchored:
        by_flow.setdefault(flow, []).append((record_id, seq))
    for flow, keys in sorted(by_flow.items()):
        model = models.get(flow)
        if model is None:
            yield AnchorFinding(None, f"flow {flow!r} is anchored but has no timeline here")
            continue
        keys.sort()
        for start in range(0, len(keys), _BATCH):
            chunk = keys[start : start + _BATCH]
            found = {
                (int(r), int(s)): str(h)
                for r, s, h in session.execute(
                    select(model.case_id, model.seq, model.hash).where(
                        tuple_(model.case_id, model.seq).in_(chunk)
                    )
                )
            }
            for record_id, seq in chunk:
                expected, number = anchored[(flow, record_id, seq)]
                actual = found.get((record_id, seq))
                if actual is None:
                    yield AnchorFinding(
                        number,
                        f"{flow} {record_id}: event {seq} it anchored is gone "
                        "(the record or its tail was deleted)",
                    )
                elif actual != expected:
                    yield AnchorFinding(
                        number,
                        f"{flow} {record_id}: event {seq} differs from the anchored one "
                        "(its timeline was rewritten)",
                    )
