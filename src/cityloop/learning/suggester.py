"""The suggester itself, free of the database: features from the text, two calibrated heads.

Features: TF-IDF over character 1–3-grams (robust to the typos and abbreviations of citizen
messages) joined with TF-IDF over jieba words and a token for the district the report is in
(territorial classes go to the district's office, which the text alone does not always say).
Each head (problem class, department) is a LinearSVC whose scores are calibrated into
probabilities by CalibratedClassifierCV (sigmoid, 3 folds; one SVM refitted on all rows, so a
suggestion costs one SVM, not three). The trained object is stored as bytes in a database
row (learning.models.LearnedModel): only objects this module made are ever loaded."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import jieba
import joblib
import numpy as np
from scipy.sparse import hstack
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

SEPARATOR = "\x1f"
MIN_EXAMPLES_PER_LABEL = 3  # the calibration's three folds each need one
_lock = threading.Lock()
_tokenizer: jieba.Tokenizer | None = None


def _jieba() -> jieba.Tokenizer:
    global _tokenizer
    with _lock:
        if _tokenizer is None:
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            _tokenizer = tokenizer
        return _tokenizer


def document(text: str, district: str | None) -> str:
    return f"{text}{SEPARATOR}{district or ''}"


def text_part(doc: str) -> str:
    return doc.split(SEPARATOR, 1)[0]


def words(doc: str) -> list[str]:
    text, _, district = doc.partition(SEPARATOR)
    tokens = [w for w in _jieba().lcut(text) if w.strip() and not _punctuation(w)]
    if district:
        tokens.append(f"@{district}")
    return tokens


def _punctuation(word: str) -> bool:
    return all(not ch.isalnum() for ch in word)


@dataclass
class Head:
    """One calibrated classifier over the shared features.

    The calibrated model's arithmetic is kept as plain arrays too (the SVM's weights, each
    class's sigmoid): scikit-learn's predict_proba checks its input and walks one calibrator
    per class, about 5 ms a suggestion; the same sums in numpy take a tenth of that."""

    labels: list[str]
    model: Any
    weights: Any = None  # (features × classes), sparse-friendly
    intercept: Any = None
    sigmoid_a: Any = None
    sigmoid_b: Any = None

    def compile(self) -> None:
        if not hasattr(self.model, "calibrated_classifiers_"):
            return
        (calibrated,) = self.model.calibrated_classifiers_
        svm = calibrated.estimator
        self.weights = np.ascontiguousarray(svm.coef_.T)
        self.intercept = svm.intercept_.copy()
        self.sigmoid_a = np.array([c.a_ for c in calibrated.calibrators])
        self.sigmoid_b = np.array([c.b_ for c in calibrated.calibrators])

    def proba(self, features: Any) -> np.ndarray:
        if self.weights is not None and len(self.labels) > 2:
            margins = np.asarray(features @ self.weights) + self.intercept
            proba = 1.0 / (1.0 + np.exp(self.sigmoid_a * margins + self.sigmoid_b))
            total = proba.sum(axis=1, keepdims=True)
            uniform = np.full_like(proba, 1.0 / proba.shape[1])
            return np.where(total > 0, proba / np.where(total > 0, total, 1), uniform)
        if hasattr(self.model, "predict_proba"):
            return np.asarray(self.model.predict_proba(features))
        # The uncalibrated baseline: a softmax of the margins only ranks, it is no probability.
        margins = np.asarray(self.model.decision_function(features))
        if margins.ndim == 1:
            margins = np.stack([-margins, margins], axis=1)
        exp = np.exp(margins - margins.max(axis=1, keepdims=True))
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))


@dataclass
class Suggester:
    chars: TfidfVectorizer
    words: TfidfVectorizer | None
    classes: Head
    departments: Head | None
    trained_on: int
    seconds: float
    dropped: dict[str, int] = field(default_factory=dict)

    def features(self, docs: list[str]) -> Any:
        parts = [self.chars.transform(docs)]
        if self.words is not None:
            parts.append(self.words.transform(docs))
        return hstack(parts).tocsr()

    def rank(self, head: Head, features: Any, limit: int = 3) -> list[list[tuple[str, float]]]:
        proba = head.proba(features)
        order = np.argsort(-proba, axis=1)[:, :limit]
        return [
            [(head.labels[j], float(row[j])) for j in idx]
            for row, idx in zip(proba, order, strict=True)
        ]

    def suggest(
        self, text: str, district: str | None = None, limit: int = 3
    ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        features = self.features([document(text, district)])
        classes = self.rank(self.classes, features, limit)[0]
        departments = self.rank(self.departments, features, limit)[0] if self.departments else []
        return classes, departments

    def class_vector(self, texts: list[str]) -> np.ndarray:
        """Each text's class probabilities, unit length: their dot product says how alike two
        reports are in meaning (the model knows 垃圾桶满了 and 果皮箱溢出 are one problem)."""
        proba = self.classes.proba(self.features([document(t, None) for t in texts]))
        norms = np.linalg.norm(proba, axis=1, keepdims=True)
        return np.asarray(proba / np.where(norms == 0, 1, norms))

    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(self, buffer, compress=3)
        return buffer.getvalue()


def loads(blob: bytes) -> Suggester:
    """A suggester from the bytes of a LearnedModel row (written by Suggester.dumps())."""
    model = joblib.load(io.BytesIO(blob))
    if not isinstance(model, Suggester):
        raise TypeError("the stored model is not a cityloop suggester")
    return model


def _keep_frequent(labels: list[str]) -> tuple[set[str], dict[str, int]]:
    counts = Counter(labels)
    keep = {label for label, n in counts.items() if n >= MIN_EXAMPLES_PER_LABEL}
    return keep, {label: n for label, n in counts.items() if label not in keep}


def _head(features: Any, labels: list[str], calibrated: bool) -> Head:
    names = sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    y = np.array([index[label] for label in labels])
    svm = LinearSVC(C=0.5, random_state=0)  # liblinear shuffles: the same data, the same model
    model = (
        CalibratedClassifierCV(svm, method="sigmoid", cv=3, ensemble=False) if calibrated else svm
    )
    model.fit(features, y)
    head = Head(names, model)
    head.compile()
    return head


def train(
    texts: list[str],
    districts: list[str | None],
    classes: list[str],
    departments: list[str | None],
    *,
    use_words: bool = True,
    calibrated: bool = True,
) -> Suggester:
    """Fit both heads. Labels seen fewer than 3 times are left out (listed in `dropped`)."""
    started = time.perf_counter()
    keep, dropped = _keep_frequent(classes)
    rows = [i for i, c in enumerate(classes) if c in keep]
    docs = [document(texts[i], districts[i]) for i in rows]
    chars = TfidfVectorizer(
        analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, preprocessor=text_part
    )
    parts = [chars.fit_transform(docs)]
    word_vectorizer = None
    if use_words:
        word_vectorizer = TfidfVectorizer(analyzer=words, min_df=2, max_df=0.5, sublinear_tf=True)
        parts.append(word_vectorizer.fit_transform(docs))
    features = hstack(parts).tocsr()
    class_head = _head(features, [classes[i] for i in rows], calibrated)
    department_head = None
    with_department = [j for j, i in enumerate(rows) if departments[i]]
    dept_labels = [str(departments[rows[j]]) for j in with_department]
    keep_dept, dropped_dept = _keep_frequent(dept_labels)
    chosen = [j for j, d in zip(with_department, dept_labels, strict=True) if d in keep_dept]
    if len(keep_dept) >= 2:
        department_head = _head(
            features[chosen], [str(departments[rows[j]]) for j in chosen], calibrated
        )
    dropped.update({f"department:{d}": n for d, n in dropped_dept.items()})
    return Suggester(
        chars,
        word_vectorizer,
        class_head,
        department_head,
        len(rows),
        time.perf_counter() - started,
        dropped,
    )


def evaluate(
    model: Suggester,
    texts: list[str],
    districts: list[str | None],
    classes: list[str],
    departments: list[str | None],
) -> dict[str, Any]:
    """Held-out figures: accuracy and macro-F1 of each head, and F1 per label."""
    features = model.features([document(t, d) for t, d in zip(texts, districts, strict=True)])
    result: dict[str, Any] = {"n": len(texts)}
    heads = [("class", model.classes, classes)]
    if model.departments is not None:
        heads.append(("department", model.departments, [d or "" for d in departments]))
    for name, head, truth in heads:
        predicted = [row[0][0] for row in model.rank(head, features, 1)]
        result[name] = scores(truth, predicted)
    return result


def scores(truth: list[str], predicted: list[str]) -> dict[str, Any]:
    labels = sorted(set(truth))
    per_label = f1_score(truth, predicted, labels=labels, average=None, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(
            float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)), 4
        ),
        "per_label": {
            label: round(float(f), 4) for label, f in zip(labels, per_label, strict=True)
        },
    }
