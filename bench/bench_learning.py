"""Benchmark: the suggester (issue 18) against the keyword guess and plain TF-IDF + LinearSVC.

On a generated history over the demo city (cityloop.learning.synthetic: colloquial
paraphrases, districts and streets, 3 % wrong labels as in a real export), split 80/20:

- held-out accuracy and macro-F1 of the class head and the department head of
  - the keyword guess (intake/classify.py; its department: the demo city's responsibility
    rule for the guessed class in the message's district),
  - plain TF-IDF character 1–3-grams + LinearSVC, one per head, no words, no district,
  - cityloop's suggester (chars + jieba words + district token, calibrated LinearSVC);
- training time of the suggester (both heads, one core) on the training part;
- the duplicate score (learning.similarity through the model) on a labelled paraphrase set:
  the same problem at the same corner told twice vs two problems at one corner; precision and
  recall at intake's threshold and the best threshold for precision ≥ 0.95;
- POST /api/v1/suggestions p50/p99 in process (TestClient: routing, auth, validation, the
  session, the model), over a demo city built into a temporary SQLite file.

Run: .venv/bin/python bench/bench_learning.py [--history 6000] [--pairs 1000] [--requests 300]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the quality goal says

from cityloop.intake.classify import suggest as keyword_suggest
from cityloop.intake.service import SEMANTIC_DUPLICATE_SCORE
from cityloop.learning import suggester as ml
from cityloop.learning import synthetic


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", type=int, default=6000)
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    messages = synthetic.history(args.history, start=datetime(2025, 1, 1, tzinfo=UTC))
    cut = int(len(messages) * 0.8)
    train, test = messages[:cut], messages[cut:]

    def cols(rows: list[synthetic.Message], districts: bool = True) -> tuple[list, ...]:
        return (
            [m.text for m in rows],
            [m.district if districts else None for m in rows],
            [m.class_code for m in rows],
            [m.department for m in rows],
        )

    print(f"history {len(messages)} generated messages: {len(train)} train, {len(test)} held out")
    truth_class = [m.class_code for m in test]
    truth_dept = [m.department for m in test]

    # the keyword guess
    from cityloop.taxonomy.service import default_rows

    names = {r["code"]: r["name"] for r in default_rows()[0] if r.get("level") == "minor"}
    if not names:
        names = {r["code"]: r["name"] for r in default_rows()[0]}
    guesses = [(keyword_suggest(m.text, names) or [None])[0] for m in test]
    guess_codes = [g.class_code if g else "" for g in guesses]
    guess_depts = [
        synthetic.owner(c, m.district) if c else "" for c, m in zip(guess_codes, test, strict=True)
    ]
    rows = [
        (
            "keyword guess (intake/classify.py)",
            ml.scores(truth_class, guess_codes),
            ml.scores(truth_dept, guess_depts),
            None,
        )
    ]

    started = time.perf_counter()
    plain = ml.train(*cols(train, districts=False), use_words=False, calibrated=False)
    plain_seconds = time.perf_counter() - started
    figures = ml.evaluate(plain, *cols(test, districts=False))
    rows.append(
        ("TF-IDF char 1-3 + LinearSVC", figures["class"], figures["department"], plain_seconds)
    )

    started = time.perf_counter()
    model = ml.train(*cols(train))
    seconds = time.perf_counter() - started
    figures = ml.evaluate(model, *cols(test))
    rows.append(("cityloop suggester", figures["class"], figures["department"], seconds))

    print(f"{'':38} {'class acc':>9} {'class F1':>9} {'dept acc':>9} {'dept F1':>9} {'train s':>8}")
    for name, c, d, s in rows:
        print(
            f"{name:38} {c['accuracy']:9.4f} {c['macro_f1']:9.4f} {d['accuracy']:9.4f} "
            f"{d['macro_f1']:9.4f} {'' if s is None else f'{s:8.1f}'}"
        )

    # duplicates by meaning
    pairs = synthetic.paraphrase_pairs(args.pairs)
    first = model.class_vector([p[0] for p in pairs])
    second = model.class_vector([p[1] for p in pairs])
    score = (first * second).sum(axis=1)
    labels = [p[2] for p in pairs]

    def pr(threshold: float) -> tuple[float, float]:
        chosen = [s >= threshold for s in score]
        tp = sum(c and y for c, y in zip(chosen, labels, strict=True))
        return tp / max(sum(chosen), 1), tp / max(sum(labels), 1)

    p, r = pr(SEMANTIC_DUPLICATE_SCORE)
    print(
        f"duplicates ({len(pairs)} labelled pairs, half duplicates): at score ≥ "
        f"{SEMANTIC_DUPLICATE_SCORE}: precision {p:.4f}, recall {r:.4f}"
    )
    for threshold in (0.5, 0.6, 0.7, 0.9, 0.95):
        p, r = pr(threshold)
        print(f"  at {threshold}: precision {p:.4f}, recall {r:.4f}")

    api_p99(messages, test, args.requests)


def api_p99(messages: list[synthetic.Message], test: list[synthetic.Message], n: int) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from cityloop.app import create_app
    from cityloop.config import Settings
    from cityloop.db import Base, make_engine, make_session_factory
    from cityloop.demo.build import build
    from cityloop.learning import service
    from cityloop.models import load_all_models
    from cityloop.org.models import User
    from cityloop.org.service import issue_token
    from cityloop.places.service import PlaceIndex

    load_all_models()
    work = Path(tempfile.mkdtemp(prefix="bench-learning-"))
    url = f"sqlite:///{work / 'city.db'}"
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        build(session, cases=0, now=now, media_dir=work / "media")
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["text", "class_code", "department", "created_at"])
        for m in messages:
            writer.writerow([m.text, m.class_code, m.department, m.created_at.isoformat()])
        places = PlaceIndex.load(session)
        service.import_history(
            session, out.getvalue().encode(), batch="bench", now=now, places=places
        )
        started = time.perf_counter()
        model = service.learn(session, now=now)
        learn_seconds = time.perf_counter() - started
        session.commit()
        print(
            f"cityloop learn ({model.trained_on} rows: held-out run + final fit): "
            f"{learn_seconds:.1f} s; held out: class macro-F1 "
            f"{model.metrics['class']['macro_f1']}, department macro-F1 "
            f"{model.metrics['department']['macro_f1']}"
        )
        user = session.scalar(select(User).where(User.username == "operator"))
        assert user is not None
        settings = Settings(database_url=url, secret_key=secrets.token_urlsafe(32), data_dir=work)
        token = issue_token(user, settings.keyring().signing, 60, now)
    app = create_app(settings, session_factory=make_session_factory(engine))
    headers = {"Authorization": f"Bearer {token}"}

    def timed(call: Callable[[int], Any]) -> list[float]:
        out = []
        for i in range(n + 50):
            started = time.perf_counter()
            response = call(i)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            if i >= 50:  # warm
                out.append(elapsed * 1000)
        return sorted(out)

    with TestClient(app) as client:
        suggest = timed(
            lambda i: client.post(
                "/api/v1/suggestions", json={"text": test[i % len(test)].text}, headers=headers
            )
        )
        # The same client, auth and session for a route that does nothing: the floor.
        me = timed(lambda i: client.get("/api/v1/me", headers=headers))
    for name, timings in (("POST /api/v1/suggestions", suggest), ("GET /api/v1/me (floor)", me)):
        p99 = timings[int(len(timings) * 0.99) - 1]
        print(
            f"{name} ({n} requests, in process): p50 {statistics.median(timings):.1f} ms, "
            f"p99 {p99:.1f} ms"
        )
    engine.dispose()


if __name__ == "__main__":
    main()
