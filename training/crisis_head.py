"""Fit the crisis detector's linear head (``detectors.emotion.CrisisScorer``) on written crisis messages.

    python -m training.crisis_head [--train training/data/crisis/train*.jsonl] [--questions training/data/crisis/questions.jsonl]
                                   [--dev training/data/crisis/dev.jsonl] [--out detectors/weights/crisis.json]

Why a head: the written prototypes alone (score = similarity to crisis sentences minus similarity to safe
ones) missed most crisis messages that never say "suicide" (stockpiled tablets, a farewell, a roof) and
flagged medicine and vitamin questions. The head is a logistic regression on the shared encoder's sentence
vector (computed once per message for every detector, so it adds no encoder pass) plus the two prototype
similarities. Its regularisation and threshold are chosen on dev data only (the dev file, a quarter of the
everyday messages and of the written questions); the held-out files (``benchmarks/data/heldout/crisis*.jsonl``)
are never read here.

Why the simplest head within one standard error of the best dev recall: the head that recalled the most
(C=3) also read a trivia question with the user's guess ("What is the capital city of Vietnam? I think
the answer is ho chi minh city.") as a crisis, 0.66, with no likeness to any crisis prototype: a weakly
regularised head over 384 dimensions extrapolates to messages unlike its training data, and each false
crisis replaces an ordinary answer with a hotline reply. The threshold is folded into the bias, so
the detector's ``crisis_threshold`` of 0.5 stays the decision point. The cue patterns are unchanged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from detectors.data import in_hash_share

DATA = Path(__file__).resolve().parent / "data" / "crisis"
MAX_FALSE_ALARMS = 0.03  # on the dev file's safe messages: a crisis reply replaces the whole answer
MAX_EVERYDAY_ALARMS = 0.01  # on everyday messages held apart for dev (``everyday_messages``)
EVERYDAY_DEV_SHARE = 25  # percent, of the everyday messages and of the written questions
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def load_rows(path: Path) -> list[dict[str, Any]]:
    from detectors.data import parse_jsonl

    if not path.is_file():
        raise ValueError(f"{path} does not exist: give a JSONL file of rows with 'text' and 'crisis' (true or false).")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text: save it as UTF-8 JSONL.") from None
    rows = parse_jsonl(text, path)
    for i, r in enumerate(rows):
        if not isinstance(r.get("text"), str) or not isinstance(r.get("crisis"), bool):
            raise ValueError(f"{path} row {i + 1}: needs 'text' (a string) and 'crisis' (true or false).")
    return rows


def features(texts: Sequence[str]) -> np.ndarray:
    """What the head reads, exactly as the scorer computes it at run time."""
    from detectors.emotion import CrisisScorer, read_window
    from detectors.encoder import get_encoder

    encoder = get_encoder()
    vectors = encoder.encode([read_window(t, encoder.core)[0] for t in texts]).vectors
    return CrisisScorer().head_features(vectors)


def everyday_messages() -> tuple[list[str], list[str]]:
    """Ordinary user messages with no crisis in them (train, dev): the training conversations' user turns
    (``training/data/judge``, written for the belief judge: sad, worried or chatty, about beliefs, not
    risk) that no cue pattern hits, split by a hash of the text. Without them the head learnt the written
    crisis files' style and flagged one everyday message in thirteen."""
    from detectors.emotion import CrisisScorer

    scorer = CrisisScorer()
    texts = set()
    for path in sorted((DATA.parent / "judge").glob("conversations_*.jsonl")):
        for line in path.open(encoding="utf-8"):
            if line.strip():
                texts.add(json.loads(line)["user_message"])
    safe = sorted(t for t in texts if not scorer.pattern_hit(t))
    dev = [t for t in safe if in_hash_share(t, EVERYDAY_DEV_SHARE)]
    chosen = set(dev)
    return [t for t in safe if t not in chosen], dev


def split_questions(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, dev) of the written questions (``questions.jsonl``: everyday and quiz questions, many after a
    sad sentence, and crisis messages that ask one), split by a hash of the text."""
    held = [in_hash_share(r["text"], EVERYDAY_DEV_SHARE) for r in rows]
    return [r for r, h in zip(rows, held) if not h], [r for r, h in zip(rows, held) if h]


def _threshold(p: np.ndarray, most: float) -> float:
    """The lowest probability that keeps the share of ``p`` (safe messages) at or above it under ``most``."""
    ranked = np.sort(p)[::-1]
    allowed = int(np.floor(most * len(ranked)))
    return float(ranked[allowed] + 1e-6) if allowed < len(ranked) else 0.5


def one_se_choice(results: list[tuple[float, float, int]]) -> int:
    """Index of the smallest C (``results``: (C, dev recall, dev crisis messages), C ascending) whose recall
    is within one standard error of the best one's: the simplest head the dev data cannot tell apart
    from the best."""
    best = max(range(len(results)), key=lambda i: results[i][1])
    recall, n = results[best][1], results[best][2]
    floor = recall - float(np.sqrt(recall * (1 - recall) / max(n, 1)))
    return next(i for i, (_, r, _) in enumerate(results) if r >= floor)


def fit(train: list[dict[str, Any]], dev: list[dict[str, Any]], questions: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    every_train, every_dev = everyday_messages()
    q_train, q_dev = split_questions(list(questions))
    train, dev = train + q_train, dev + [r for r in q_dev if r["crisis"]]
    every_dev = every_dev + [r["text"] for r in q_dev if not r["crisis"]]
    xt = features([r["text"] for r in train] + every_train)
    yt = np.array([r["crisis"] for r in train] + [False] * len(every_train))
    xd, yd = features([r["text"] for r in dev]), np.array([r["crisis"] for r in dev])
    xe = features(every_dev)
    fitted, results = [], []
    for c in C_GRID:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(xt, yt)
        p, pe = model.predict_proba(xd)[:, 1], model.predict_proba(xe)[:, 1]
        t = max(_threshold(p[~yd], MAX_FALSE_ALARMS), _threshold(pe, MAX_EVERYDAY_ALARMS))
        fitted.append((model, t, p, pe))
        results.append((c, float(((p >= t) & yd).sum() / yd.sum()), int(yd.sum())))
    k = one_se_choice(results)
    (model, t, p, pe), (c, recall, _) = fitted[k], results[k]
    bias = float(model.intercept_[0] - np.log(t / (1 - t)))  # score 0.5 at the chosen threshold
    return {"weights": [round(float(w), 6) for w in model.coef_[0]], "bias": round(bias, 6),
            "features": "shared encoder sentence vector, then max cosine to the positive and to the negative prototypes",
            "chosen_on_dev": {"C": c, "rule": "smallest C within one standard error of the best dev recall",
                              "dev_recall_by_C": {str(ci): round(r, 4) for ci, r, _ in results},
                              "threshold": round(t, 4), "recall": round(recall, 4),
                              "false_alarms": round(float(((p >= t) & ~yd).sum() / (~yd).sum()), 4),
                              "everyday_alarms": round(float((pe >= t).mean()), 4), "everyday_dev": len(every_dev),
                              "max_false_alarms": MAX_FALSE_ALARMS, "max_everyday_alarms": MAX_EVERYDAY_ALARMS},
            "trained_on": f"{len(train)} written messages ({int(sum(r['crisis'] for r in train))} crisis) and "
                          f"{len(every_train)} everyday ones; see training/data/crisis/CARD.md"}


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Fit the crisis detector's linear head on written crisis messages "
                                                 "and store it in the crisis spec (cue patterns and prototypes kept).")
    parser.add_argument("--train", nargs="+", default=[str(p) for p in sorted(DATA.glob("train*.jsonl"))],
                        help="training files (default: every train*.jsonl beside this module's data card)")
    parser.add_argument("--questions", default=str(DATA / "questions.jsonl"),
                        help="written everyday and crisis questions, a quarter held apart for dev ('' for none)")
    parser.add_argument("--dev", default=str(DATA / "dev.jsonl"))
    parser.add_argument("--out", default=None, help="crisis spec to update (default: the shipped detectors/weights/crisis.json)")
    args = parser.parse_args(argv)
    from detectors.emotion import CRISIS_FILE

    out = Path(args.out) if args.out else CRISIS_FILE
    spec = json.loads(CRISIS_FILE.read_text())
    try:
        questions = load_rows(Path(args.questions)) if args.questions else []
        train, dev = [r for path in args.train for r in load_rows(Path(path))], load_rows(Path(args.dev))
    except ValueError as exc:
        parser.error(str(exc))
    head = fit(train, dev, questions)  # the features never read a head
    spec["head"] = head
    out.write_text(json.dumps(spec, indent=1) + "\n")
    print(json.dumps(head["chosen_on_dev"]), f"written {out}")
    return head


if __name__ == "__main__":
    main()
