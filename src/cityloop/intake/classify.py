"""Guessing a problem class from free text, for reports that arrive without one.

jieba splits the text with a dictionary that knows every class name of the taxonomy and the
domain words in data/keywords.json ("占道经营" stays one word); each word votes for classes.
The guess is a suggestion that the operator confirms when filing (R-AC-5)."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jieba

_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None
_keywords: dict[str, dict[str, float]] = {}


@dataclass(frozen=True)
class Suggestion:
    class_code: str
    name: str
    score: float


def _load(class_names: dict[str, str], cache_dir: Path | None) -> jieba.Tokenizer:
    global _tokenizer, _keywords
    with _lock:
        if _tokenizer is None:
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            # jieba writes a 9 MB cache; keep it out of the working directory.
            tokenizer.tmp_dir = str(cache_dir or Path(tempfile.gettempdir()))
            data = json.loads(
                resources.files("cityloop.intake")
                .joinpath("data", "keywords.json")
                .read_text("utf-8")
            )
            keywords: dict[str, dict[str, float]] = {
                word: {code: float(w) for code, w in codes.items()}
                for word, codes in data["keywords"].items()
            }
            for code, name in class_names.items():
                keywords.setdefault(name, {})[code] = keywords.get(name, {}).get(code, 0) + 5.0
            for word in keywords:
                tokenizer.add_word(word, freq=200000)
            _keywords = keywords
            _tokenizer = tokenizer
        return _tokenizer


def suggest(
    text: str, class_names: dict[str, str], *, limit: int = 3, cache_dir: Path | None = None
) -> list[Suggestion]:
    """The likeliest classes for a text, best first (empty when nothing matches)."""
    tokenizer = _load(class_names, cache_dir)
    scores: dict[str, float] = defaultdict(float)
    seen: set[str] = set()
    for word in tokenizer.cut(text or ""):
        if word in seen:
            continue
        seen.add(word)
        for code, weight in _keywords.get(word, {}).items():
            if code in class_names:
                scores[code] += weight
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [Suggestion(code, class_names[code], score) for code, score in ranked if score > 0]
