"""Train the detectors' default weights from ``../shared/data``, and users' own detectors from a file.

Default weights (one command; CPU-capped, see each function's limits):

    .venv/bin/python -m training.detector_training --default all

User fine-tuning (also ``guardrail train-detector``):

    train_detector("emotion", "my.csv", out="my-emotion", text_col="text", label_col="label")
    train_detector("stance", "my.jsonl", out="my-stance", claim_col="claim", draft_col="draft", label_col="label")

Files are validated (readable UTF-8, columns present, no empty rows, at least two classes) before any
model is loaded. Each run writes the weights, ``metrics.json`` (held-out split) and a ``README.md``
data card into ``out``; the folder loads with ``EmotionDetector(path=out)`` / ``StanceDetector(path=out)``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from detectors.types import STANCE_LABELS

WEIGHTS = Path(__file__).resolve().parent.parent / "detectors" / "weights"
RETRAIN_COMMAND = ".venv/bin/python -m training.detector_training --default all"


class DetectorDataError(ValueError):
    """A training file cannot be used; the message names the file, the problem and the fix."""


# ---------------------------------------------------------------- metrics

def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """F1, precision, recall, AUROC and expected calibration error of one binary score."""
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    pred = (p >= threshold).astype(int)
    out = {"f1": float(f1_score(y, pred, zero_division=0)), "precision": float(precision_score(y, pred, zero_division=0)),
           "recall": float(recall_score(y, pred, zero_division=0)), "threshold": float(threshold),
           "positives": int(y.sum()), "n": int(len(y))}
    out["auroc"] = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    out["ece"] = expected_calibration_error(y, p)
    return out


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (p >= lo) & (p < hi) if hi < 1 else (p >= lo) & (p <= hi)
        if mask.any():
            total += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return float(total)


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    grid = np.linspace(0.05, 0.95, 91)
    scores = [f1_score(y, (p >= t).astype(int), zero_division=0) for t in grid]
    return float(grid[int(np.argmax(scores))])


def stance_metrics(y: Sequence[str], probs: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1 (over the labels present) and endorses-vs-rest AUROC."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    labels = list(STANCE_LABELS)
    y_idx = np.array([labels.index(v) for v in y])
    pred = probs.argmax(1)
    present = sorted(set(y_idx.tolist()))
    out = {"n": int(len(y_idx)), "accuracy": float(accuracy_score(y_idx, pred)),
           "macro_f1": float(f1_score(y_idx, pred, labels=present, average="macro", zero_division=0))}
    endorse = (y_idx == 0).astype(int)
    out["endorses_auroc"] = float(roc_auc_score(endorse, probs[:, 0])) if 0 < endorse.sum() < len(endorse) else float("nan")
    return out


# ---------------------------------------------------------------- default weights

def train_default_emotion(out: Path = WEIGHTS / "emotion", progress: bool = True) -> dict[str, Any]:
    """The default emotion head: GoEmotions + CARER (subsampled for CPU), calibrated, evaluated."""
    from training.detector_emotion import TARGETS, default_emotion_corpus, load_carer, load_goemotions, save_head, train_head
    from training.detector_features import embed_texts

    started = time.monotonic()
    corpus = default_emotion_corpus()
    x = embed_texts(corpus["train"][0], label="emotion train", progress=progress)
    x_dev = embed_texts(corpus["dev"][0], label="emotion dev", progress=progress)
    arrays = train_head(x, corpus["train"][1], x_dev, corpus["dev"][1], progress=progress)
    from detectors.emotion import _Head  # the runtime head computes the evaluation probabilities

    save_head(arrays, out)
    head = _Head(out)
    dev_sad = head(x_dev)[:, 0]
    threshold = best_f1_threshold(corpus["dev"][1][:, 0], dev_sad)
    metrics: dict[str, Any] = {"train_examples": len(x), "dev_examples": len(x_dev), "sadness_threshold": threshold}
    g_texts, _, g_sad = load_goemotions("test")
    p = head(embed_texts(g_texts, label="GoEmotions test", progress=progress))
    metrics["goemotions_test_sadness"] = binary_metrics(g_sad, p[:, 0], threshold)
    metrics["goemotions_test_sadness_at_0.5"] = binary_metrics(g_sad, p[:, 0], 0.5)
    c_texts, c_y = load_carer("validation")
    p = head(embed_texts(c_texts, label="CARER validation", progress=progress))
    metrics["carer_validation_sadness"] = binary_metrics(c_y[:, 0], p[:, 0], threshold)
    metrics["carer_validation_sadness_at_0.5"] = binary_metrics(c_y[:, 0], p[:, 0], 0.5)
    for j, name in enumerate(TARGETS):
        metrics.setdefault("carer_validation_auroc", {})[name] = binary_metrics(c_y[:, j], p[:, j])["auroc"]
    metrics["train_seconds"] = round(time.monotonic() - started, 1)
    save_head(arrays, out, sadness_threshold=threshold, datasets=["goemotions/original train", "emotion_carer train"])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def default_stance_data(seed: int = 0, nli_limit: int = 6000, anli_limit: int = 600, task_limit: int = 4000,
                        dev_limit: int = 300) -> dict[str, list]:
    """Training and dev examples for the default stance model (subsampled for a CPU budget)."""
    from training.stance_data import build_task_data, load_nli

    rng = random.Random(seed)
    esnli = load_nli("esnli_dev")
    rng.shuffle(esnli)
    anli = load_nli("anli_r1_dev") + load_nli("anli_r2_dev") + load_nli("anli_r3_dev")
    rng.shuffle(anli)
    task = build_task_data(seed)["train"]
    rng.shuffle(task)
    dev = esnli[:dev_limit] + task[:dev_limit]
    train = esnli[dev_limit : dev_limit + nli_limit] + anli[:anli_limit] + task[dev_limit : dev_limit + task_limit]
    rng.shuffle(train)
    return {"train": train, "dev": dev}


def train_default_stance(out: Path = WEIGHTS / "stance", *, time_limit_s: float = 15 * 60, max_steps: int = 700,
                         batch_size: int = 16, progress: bool = True) -> dict[str, Any]:
    """The default stance adapter: NLI + task data, LoRA on the embedded MiniLM, capped in wall-clock time."""
    from training.detector_stance import train_stance

    data = default_stance_data()
    return train_stance(data["train"], data["dev"], out, max_steps=max_steps, time_limit_s=time_limit_s,
                        batch_size=batch_size, lr=6e-4, progress=progress)
