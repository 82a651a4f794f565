"""The secret keys that sign bearer tokens and console sessions: where they come from, how
strong they must be, and how they are rotated.

A deployment gives its keys in ``CITYLOOP_SECRET_KEY`` or in the file named by
``CITYLOOP_SECRET_KEY_FILE``: one key per line (or separated by commas), the first one signs,
every other one is still accepted. A key may carry ``until=<ISO time>``: after that moment it
is refused, which is how an old key is retired after a grace period. There is no default key:
a key printed in public source signs for anyone who reads it, so the app refuses to start
with none, with a weak one, or with the one earlier versions shipped.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# Keys that were once printed in this project's source, so anyone may know them.
PUBLIC_KEYS = frozenset({"cityloop-dev-secret-change-me-in-production-0123456789"})
# Estimated bits of a key: its length times the Shannon entropy of its characters. A key
# from `secrets.token_urlsafe(32)` scores ~190; "x" * 64 scores 0.
MIN_BITS = 128
HOW_TO_MAKE = (
    "make one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'` and give it "
    "in CITYLOOP_SECRET_KEY, or put it in a file (mode 0600) named by CITYLOOP_SECRET_KEY_FILE"
)


class InsecureSecret(Exception):
    """No key, a weak key, or a publicly known key: the app must not start with it."""


@dataclass(frozen=True)
class SigningKey:
    secret: str
    not_after: datetime | None = None

    @property
    def kid(self) -> str:
        # Names the key in a token's header without revealing it, so a token is checked
        # against its own key and not against each key in turn.
        return hashlib.sha256(self.secret.encode()).hexdigest()[:12]

    def valid_at(self, now: datetime) -> bool:
        return self.not_after is None or now < self.not_after


@dataclass(frozen=True)
class Keyring:
    keys: tuple[SigningKey, ...]

    @property
    def signing(self) -> SigningKey:
        return self.keys[0]

    def by_kid(self, kid: str, now: datetime) -> SigningKey | None:
        for key in self.keys:
            if key.kid == kid and key.valid_at(now):
                return key
        return None

    def accepted(self, now: datetime) -> list[str]:
        return [key.secret for key in self.keys if key.valid_at(now)]


def strength_bits(secret: str) -> float:
    if not secret:
        return 0.0
    counts = Counter(secret)
    per_char = -sum(n / len(secret) * math.log2(n / len(secret)) for n in counts.values())
    return per_char * len(secret)


def weakness(secret: str) -> str | None:
    """Why this key must not sign (None when it may)."""
    if secret in PUBLIC_KEYS:
        return "it is the key printed in cityloop's public source"
    bits = strength_bits(secret)
    if bits < MIN_BITS:
        return f"it is too weak (about {bits:.0f} bits, at least {MIN_BITS} needed)"
    return None


def parse_keyring(text: str, *, origin: str) -> Keyring:
    keys: list[SigningKey] = []
    for raw in text.replace(",", "\n").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        secret, _, rest = line.partition(" ")
        not_after = None
        rest = rest.strip()
        if rest:
            if not rest.startswith("until="):
                raise InsecureSecret(f"{origin}: after a key only 'until=<ISO time>' may follow")
            try:
                not_after = datetime.fromisoformat(rest.removeprefix("until="))
            except ValueError as exc:
                raise InsecureSecret(f"{origin}: {rest!r} is not an ISO time") from exc
            if not_after.tzinfo is None:
                raise InsecureSecret(f"{origin}: {rest!r} needs a time zone (e.g. +08:00)")
        problem = weakness(secret)
        if problem is not None:
            raise InsecureSecret(
                f"{origin}: key {len(keys) + 1} is refused: {problem}; {HOW_TO_MAKE}"
            )
        keys.append(SigningKey(secret, not_after))
    if not keys:
        raise InsecureSecret(f"{origin} holds no key; {HOW_TO_MAKE}")
    if keys[0].not_after is not None:
        raise InsecureSecret(f"{origin}: the first key signs and cannot have an end ('until=')")
    return Keyring(tuple(keys))


def load_keyring(secret_key: str, secret_key_file: Path | None) -> Keyring:
    if secret_key:
        return parse_keyring(secret_key, origin="CITYLOOP_SECRET_KEY")
    if secret_key_file is not None:
        try:
            text = secret_key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise InsecureSecret(
                f"CITYLOOP_SECRET_KEY_FILE {secret_key_file} cannot be read: {exc.strerror}"
            ) from exc
        return parse_keyring(text, origin=f"CITYLOOP_SECRET_KEY_FILE {secret_key_file}")
    raise InsecureSecret(f"no secret key is set: {HOW_TO_MAKE}")


def ensure_key_file(path: Path) -> Path:
    """The demo's own key: made once per data directory, readable by its owner alone."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
    os.chmod(path, 0o600)
    return path
