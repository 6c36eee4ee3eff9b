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
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from detectors.data import parse_jsonl
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


def best_f1_threshold(y: np.ndarray, p: np.ndarray, groups: np.ndarray | None = None) -> float:
    """The threshold (0.05..0.95) with the best F1 on held-out data; with ``groups``, the best mean of
    the per-group F1s, so a source with few positives counts as much as one with many."""
    from sklearn.metrics import f1_score

    groups = np.zeros(len(y), int) if groups is None else np.asarray(groups)
    grid = np.linspace(0.05, 0.95, 91)
    scores = [np.mean([f1_score(y[groups == g], (p[groups == g] >= t).astype(int), zero_division=0)
                       for g in np.unique(groups)]) for t in grid]
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

def train_default_emotion(out: Path = WEIGHTS / "emotion", progress: bool = True, tuned: Path | None = None) -> dict[str, Any]:
    """The default emotion weights: MLP head over the shared vector (GoEmotions + CARER, subsampled for
    CPU), lexical model, and the LoRA-tuned encoder (trained here unless ``tuned`` names a trained one),
    stacked and calibrated on dev, then evaluated."""
    from training.detector_emotion import default_emotion_corpus, save_head, train_head, train_lexical
    from training.detector_features import embed_texts

    started = time.monotonic()
    corpus = default_emotion_corpus()
    x = embed_texts(corpus["train"][0], label="emotion train", progress=progress)
    x_dev = embed_texts(corpus["dev"][0], label="emotion dev", progress=progress)
    arrays = train_head(x, corpus["train"][1], x_dev, corpus["dev"][1], progress=progress)
    save_head(arrays, out)
    np.savez_compressed(out / "lexical.npz", **train_lexical(*corpus["lexical"]))
    if tuned is None:
        from detectors.models import guardrail_home
        from training.emotion_encoder import train_emotion_encoder

        tuned = guardrail_home() / "runs" / "emotion-encoder"  # resumes from its checkpoint if stopped
        train_emotion_encoder(tuned, progress=progress)
    metrics = stack_emotion(out, tuned, progress=progress)
    metrics["train_examples"], metrics["lexical_train_examples"] = len(x), len(corpus["lexical"][0])
    metrics["train_seconds"] = round(time.monotonic() - started, 1)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_default_card(out, metrics)
    return metrics


def emotion_matrix(detector: Any, texts: Sequence[str]) -> np.ndarray:
    """``detector.predict(texts)`` as an (n, 5) array in ``TARGETS`` order."""
    from training.detector_emotion import TARGETS

    return np.array([[getattr(s, name) for name in TARGETS] for s in detector.predict(list(texts))])


def stack_emotion(out: Path, tuned: Path | None, progress: bool = True) -> dict[str, Any]:
    """Fit the stack (MLP + lexical [+ tuned encoder copied from ``tuned``]) of the head in ``out`` on dev,
    choose the sadness threshold there, save, and evaluate on GoEmotions test and CARER validation."""
    import shutil

    from detectors import models
    from detectors.emotion import TUNED_DIR, EmotionDetector, _Head, _Lexical  # the runtime code computes every probability
    from detectors.emotion_encoder import ADAPTER_FILE, CONFIG_FILE, TunedEmotionScorer
    from training.detector_emotion import TARGETS, default_emotion_corpus, load_carer, load_goemotions, save_head, stack
    from training.detector_features import embed_texts

    corpus = default_emotion_corpus()
    dev_texts, dev_y = corpus["dev"]
    x_dev = embed_texts(dev_texts, label="emotion dev", progress=progress)
    arrays = {k: v for k, v in np.load(out / "head.npz").items() if k in ("w1", "b1", "w2", "b2")}
    arrays["platt_a"], arrays["platt_b"] = np.ones(len(TARGETS), np.float32), np.zeros(len(TARGETS), np.float32)
    save_head(arrays, out)
    others = [_Lexical(out / "lexical.npz").logits(dev_texts)]
    if tuned is not None:
        (out / TUNED_DIR).mkdir(exist_ok=True)
        for name in (ADAPTER_FILE, CONFIG_FILE):
            shutil.copyfile(Path(tuned) / name, out / TUNED_DIR / name)
        others.append(TunedEmotionScorer(out / TUNED_DIR).logits(dev_texts, use_cache=False))
    else:
        shutil.rmtree(out / TUNED_DIR, ignore_errors=True)
    mlp_dev = _Head(out).raw(x_dev)
    arrays["platt_a"], arrays["platt_b"], (arrays["lex_weight"],) = stack(dev_y, mlp_dev, others[0])  # the fast stack
    if tuned is not None:
        arrays["full_a"], arrays["full_b"], (arrays["full_lex"], arrays["tuned_weight"]) = stack(dev_y, mlp_dev, *others)
        arrays["sentence_lex"], arrays["sentence_b"], (arrays["sentence_tuned"],) = stack(dev_y, *others)
    # the dev set is 1,200 GoEmotions rows (4 % sad) then 1,200 CARER rows (29 % sad): weigh both alike
    sources = np.repeat([0, 1], [len(dev_texts) // 2, len(dev_texts) - len(dev_texts) // 2])
    meta: dict[str, Any] = {"datasets": ["goemotions/original train", "emotion_carer train"]}
    metrics: dict[str, Any] = {"dev_examples": len(x_dev),
                               "scorers": ["mlp", "lexical"] + (["tuned_encoder"] if tuned is not None else [])}
    if tuned is not None:
        metrics["tuned_encoder"] = json.loads((Path(tuned) / "train_info.json").read_text()) \
            if (Path(tuned) / "train_info.json").is_file() else {}
    g_texts, _, g_sad = load_goemotions("test")
    c_texts, c_y = load_carer("validation")
    for use_tuned in ([True, False] if tuned is not None else [False]):
        save_head(arrays, out, **meta)
        models.clear_cache()  # the detector must read the head just written
        detector = EmotionDetector(path=out, tuned=use_tuned)
        dev_sad = np.array([s.sadness for s in detector.predict(dev_texts)])
        threshold = best_f1_threshold(dev_y[:, 0], dev_sad, sources)
        meta["sadness_threshold" if use_tuned or tuned is None else "fast_sadness_threshold"] = threshold
        part: dict[str, Any] = {"sadness_threshold": threshold}
        p = emotion_matrix(detector, g_texts)
        part["goemotions_test_sadness"] = binary_metrics(g_sad, p[:, 0], threshold)
        part["goemotions_test_sadness_at_0.5"] = binary_metrics(g_sad, p[:, 0], 0.5)
        p = emotion_matrix(detector, c_texts)
        part["carer_validation_sadness"] = binary_metrics(c_y[:, 0], p[:, 0], threshold)
        part["carer_validation_sadness_at_0.5"] = binary_metrics(c_y[:, 0], p[:, 0], 0.5)
        part["carer_validation_auroc"] = {name: binary_metrics(c_y[:, j], p[:, j])["auroc"] for j, name in enumerate(TARGETS)}
        if use_tuned or tuned is None:
            metrics.update(part)
        else:
            metrics["fast_without_tuned_encoder"] = part
    save_head(arrays, out, **meta)
    return metrics


EMOTION_CARD = """# Default emotion head

Three scorers stacked per output (sadness, anger, joy, fear, distress):
- a small MLP (384 -> 256 -> 5, ReLU, dropout 0.2) over the shared all-MiniLM-L6-v2 sentence vector
  (int8 ONNX Runtime by default), `head.npz`;
- a word uni/bigram TF-IDF logistic regression (30,000 terms, sublinear tf, balanced classes),
  `lexical.npz` (vocabulary, idf, coefficients; run in numpy, no sklearn at run time);
- a LoRA-tuned copy of the encoder, `tuned/` (`python -m training.emotion_encoder`): rank-16 adapters on
  every linear layer of the top two layers (`layers` in `tuned/adapter.json`) and a linear output over the
  mean-pooled tokens, trained for two passes over all GoEmotions train rows and the CARER train rows
  outside dev, with the 28 GoEmotions and 6 CARER labels as auxiliary outputs; merged into the encoder and
  exported at first use as one int8 graph with the shared encoder, whose four lower layers it shares
  (one pass per message for both).
Per output, p = sigmoid(a * mlp_logit + c * lexical_logit + d * tuned_logit + b), with a, b, c, d fitted
by logistic regression on held-out dev data: the mix and the calibration in one step. `config.json` holds
the targets and the sadness threshold (`sadness_threshold`) that maximises the mean of the dev F1 on the
GoEmotions rows and on the CARER rows (the two sources weigh alike, whatever their share of positives).
- Sentences: for a message of several sentences the tuned encoder's token states (one pass) are also
  pooled over each of its first four and last four sentences and scored by a second stack (lexical + tuned encoder,
  `sentence_*` in `head.npz`, fitted on the same dev rows); a message's sadness, fear, anger and distress
  are at least those of its saddest sentence. The thresholds and metrics below include this step.
- A fast stack without the tuned encoder (`platt_a`, `platt_b`, `lex_weight`; `fast_sadness_threshold`)
  serves `EmotionDetector(tuned=False)`; its metrics are under `fast_without_tuned_encoder`.

## Datasets (from `../shared/data`, not copied here)
- GoEmotions (Demszky et al. 2020, CC BY 4.0), `goemotions/original/train.tsv`: every row labelled
  sadness/grief or fear/nervousness, plus a random sample of the rest (7,000 rows in all). Target mapping:
  sadness = sadness + grief; anger/joy/fear = the GoEmotions Ekman groups; distress = any sad, afraid,
  angry, disgusted, disappointed, remorseful or embarrassed label.
- CARER `emotion` (Saravia et al. 2018, research use), `emotion_carer/train.jsonl`: 7,000 rows
  (0 sadness, 1 joy, 2 love -> joy, 3 anger, 4 fear; distress = sadness, anger or fear).
- The lexical model needs no encoder pass, so it is trained on all 43,410 GoEmotions train rows and all
  CARER train rows except the dev rows (58,210 rows).
- The tuned encoder: all 43,410 GoEmotions train rows and the 14,795 CARER train rows that are not dev rows.
- Dev (early stopping, calibration, stacking, threshold): 1,200 GoEmotions dev rows + 1,200 CARER train rows
  used by none of the three scorers. GoEmotions test and CARER validation are never used in training.

The subsampling of the MLP head keeps training within a CPU budget on a shared 2-core machine. The tuned
encoder takes about 20 minutes on 2 cores (checkpointed every 200 steps; a stopped run resumes);
`--tuned DIR` stacks one trained earlier with `python -m training.emotion_encoder DIR`.

## Retrain

    {command}

## Held-out metrics (`metrics.json`)

```json
{metrics}
```
"""

def write_default_card(out: Path, metrics: dict[str, Any]) -> None:
    """The emotion head's data card (the stance card is written by training.detector_stance)."""
    (out / "README.md").write_text(EMOTION_CARD.format(command=RETRAIN_COMMAND, metrics=json.dumps(metrics, indent=2)))


# ---------------------------------------------------------------- user files

EMOTION_SYNONYMS = {
    "sadness": "sadness", "sad": "sadness", "grief": "sadness", "sorrow": "sadness", "depressed": "sadness",
    "anger": "anger", "angry": "anger", "annoyance": "anger", "rage": "anger",
    "joy": "joy", "happy": "joy", "happiness": "joy", "love": "joy", "amusement": "joy",
    "fear": "fear", "afraid": "fear", "scared": "fear", "anxiety": "fear", "nervousness": "fear",
    "distress": "distress",
}
STANCE_SYNONYMS = {
    "endorses": "endorses", "endorse": "endorses", "agree": "endorses", "agrees": "endorses", "supports": "endorses",
    "entailment": "endorses",
    "corrects": "corrects", "correct": "corrects", "refutes": "corrects", "disagrees": "corrects",
    "contradiction": "corrects",
    "hedges": "hedges", "hedge": "hedges", "unsure": "hedges",
    "ignores": "ignores", "ignore": "ignores", "unrelated": "ignores", "off-topic": "ignores", "neutral": "ignores",
}
MIN_ROWS = 8


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV/TSV or JSONL file as dicts; a clear DetectorDataError for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DetectorDataError(f"{path}: no such file. Pass --data with a CSV or JSONL file.")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DetectorDataError(
            f"{path} is not UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start}): re-save it as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > fixed.{path.suffix.lstrip('.') or 'csv'}`."
        ) from None
    if not text.strip():
        raise DetectorDataError(f"{path} is empty: it needs a header row (CSV) or one JSON object per line (JSONL).")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return parse_jsonl(text, path, DetectorDataError)
    if suffix not in (".csv", ".tsv", ".txt"):
        raise DetectorDataError(f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .jsonl.")
    delimiter = "\t" if suffix == ".tsv" else ","
    return list(csv.DictReader(text.splitlines(), delimiter=delimiter))


def _require_columns(path: Path, rows: list[dict[str, Any]], columns: dict[str, str]) -> None:
    present = set().union(*(row.keys() for row in rows)) if rows else set()
    missing = [f"{option} {name!r}" for option, name in columns.items() if name not in present]
    if missing:
        raise DetectorDataError(
            f"{path} has no column {', '.join(missing)}; its columns are {sorted(present)}. "
            f"Name the right ones with {', '.join(columns)}."
        )
    empty = [i + 2 for i, row in enumerate(rows) if any(not str(row.get(name) or "").strip() for name in columns.values())]
    if empty:
        shown = ", ".join(map(str, empty[:5])) + (" ..." if len(empty) > 5 else "")
        raise DetectorDataError(
            f"{path} has {len(empty)} row(s) with an empty {'/'.join(columns.values())} (line {shown}): fill or delete them."
        )
    if len(rows) < MIN_ROWS:
        raise DetectorDataError(f"{path} has {len(rows)} rows; at least {MIN_ROWS} are needed to hold some out for evaluation.")


def load_emotion_file(path: str | Path, text_col: str = "text", label_col: str = "label",
                      target: str = "sadness") -> tuple[list[str], np.ndarray, list[str]]:
    """Texts, a 0/1 matrix over the targets found, and those target names. Labels are emotion names
    (several per row, comma-separated, allowed) or 0/1 for ``target``."""
    from training.detector_emotion import TARGETS

    path = Path(path)
    rows = read_rows(path)
    _require_columns(path, rows, {"--text-col": text_col, "--label-col": label_col})
    texts = [str(row[text_col]).strip() for row in rows]
    values = [str(row[label_col]).strip().lower() for row in rows]
    if target not in TARGETS:
        raise DetectorDataError(f"--target {target!r} is not one of {list(TARGETS)}.")
    if set(values) <= {"0", "1", "0.0", "1.0", "true", "false", "yes", "no"}:
        y = np.array([[float(v in {"1", "1.0", "true", "yes"})] for v in values], dtype=np.float32)
        names = [target]
    else:
        sets = [{EMOTION_SYNONYMS.get(part.strip()) for part in v.split(",")} - {None} for v in values]
        names = [t for t in TARGETS if any(t in s for s in sets)]
        if not names:
            raise DetectorDataError(
                f"{path}: no label in {label_col!r} names an emotion this detector scores ({sorted(set(values))[:8]}); "
                f"use {sorted(EMOTION_SYNONYMS)} or 0/1 with --target."
            )
        y = np.array([[float(t in s) for t in names] for s in sets], dtype=np.float32)
    if len(set(values)) < 2 or not any(0 < y[:, j].sum() < len(y) for j in range(y.shape[1])):
        raise DetectorDataError(
            f"{path}: every row has the same label ({values[0]!r}); a detector needs at least two classes to learn from."
        )
    return texts, y, names


def load_stance_file(path: str | Path, claim_col: str = "claim", draft_col: str = "draft", label_col: str = "label",
                     question_col: str | None = None) -> list:
    from training.stance_data import StanceExample

    path = Path(path)
    rows = read_rows(path)
    _require_columns(path, rows, {"--claim-col": claim_col, "--draft-col": draft_col, "--label-col": label_col})
    examples, unknown = [], set()
    for row in rows:
        label = STANCE_SYNONYMS.get(str(row[label_col]).strip().lower())
        if label is None:
            unknown.add(str(row[label_col]))
            continue
        question = str(row.get(question_col) or "").strip() or None if question_col else None
        examples.append(StanceExample(str(row[claim_col]).strip(), str(row[draft_col]).strip(), label, question, str(path)))
    if unknown:
        raise DetectorDataError(
            f"{path}: unknown stance label(s) {sorted(unknown)[:8]} in {label_col!r}; use one of {list(STANCE_LABELS)} "
            f"(or entailment/contradiction/neutral)."
        )
    if len({e.label for e in examples}) < 2:
        raise DetectorDataError(f"{path}: every row has the label {examples[0].label!r}; at least two classes are needed.")
    return examples


def _split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(2, int(round(n * test_fraction)))
    return order[n_test:], order[:n_test]


def write_card(out: Path, kind: str, data: str, command: str, metrics: dict[str, Any], notes: str = "") -> None:
    lines = [f"# {kind} detector weights", "", f"- data: `{data}`", f"- trained: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"- command: `{command}`", f"- load: `{'EmotionDetector' if kind == 'emotion' else 'StanceDetector'}(path={str(out)!r})`",
             "", "## Held-out metrics", "", "```json", json.dumps(metrics, indent=2), "```", ""]
    if notes:
        lines += [notes, ""]
    (out / "README.md").write_text("\n".join(lines))


def train_detector(kind: str, data: str | Path, out: str | Path, *, text_col: str = "text", label_col: str = "label",
                   claim_col: str = "claim", draft_col: str = "draft", question_col: str | None = None,
                   target: str = "sadness", test_fraction: float = 0.2, seed: int = 0, max_steps: int = 200,
                   time_limit_s: float | None = 900, method: str = "head", progress: bool = True) -> dict[str, Any]:
    """Validate ``data``, train a detector on it, evaluate on a held-out split, and write ``out``.

    Returns the metrics dict (also written to ``out/metrics.json``)."""
    if kind not in ("emotion", "stance"):
        raise DetectorDataError(f"kind must be 'emotion' or 'stance', got {kind!r}.")
    if not 0 < test_fraction < 0.9:
        raise DetectorDataError(f"test_fraction must be between 0 and 0.9, got {test_fraction}.")
    out = Path(out)
    command = (f"guardrail train-detector {kind} --data {data} --out {out}")
    if kind == "emotion":
        texts, y, names = load_emotion_file(data, text_col, label_col, target)  # validates before any model loads
        from detectors.emotion import EmotionDetector
        from training.detector_emotion import save_head, train_head
        from training.detector_features import embed_texts

        train_idx, test_idx = _split(len(texts), test_fraction, seed)
        x = embed_texts(texts, label="emotion data", progress=progress)
        n_dev = int(len(train_idx) * 0.15) if len(train_idx) >= 40 else 0
        dev_idx, fit_idx = (train_idx[:n_dev], train_idx[n_dev:]) if n_dev else (train_idx, train_idx)
        arrays = train_head(x[fit_idx], y[fit_idx], x[dev_idx], y[dev_idx], hidden=min(256, max(16, len(fit_idx))),
                            epochs=40, seed=seed, progress=False)
        save_head(arrays, out, tuple(names), datasets=[str(data)])
        detector = EmotionDetector(path=out)
        probs = detector.head(x[test_idx])
        metrics = {"kind": kind, "targets": names, "train_rows": int(len(train_idx)), "test_rows": int(len(test_idx))}
        for j, name in enumerate(names):
            metrics[name] = binary_metrics(y[test_idx, j], probs[:, j])
    else:
        examples = load_stance_file(data, claim_col, draft_col, label_col, question_col)
        from detectors.stance import DEFAULT_PATH, StanceDetector
        from training.detector_stance import train_stance

        train_idx, test_idx = _split(len(examples), test_fraction, seed)
        train = [examples[i] for i in train_idx]
        test = [examples[i] for i in test_idx]
        n_dev = int(len(train) * 0.15) if len(train) >= 40 else 0
        dev, fit = (train[:n_dev], train[n_dev:]) if n_dev else ([], train)
        if method == "lora":
            config = train_stance(fit, dev, out,
                                  init_from=DEFAULT_PATH if (DEFAULT_PATH / "adapter_config.json").is_file() else None,
                                  max_steps=max_steps, time_limit_s=time_limit_s, batch_size=16, lr=2e-4, seed=seed,
                                  progress=progress)
        elif method == "head":
            from training.detector_stance import train_stance_head

            # continue from the default head: a few user examples adjust it rather than replace it
            init = DEFAULT_PATH if (DEFAULT_PATH / "head.npz").is_file() else None
            config = train_stance_head(fit, dev, out, init_from=init, epochs=max(5, min(60, max_steps)),
                                       lr=3e-4 if init else 1e-3, seed=seed, progress=progress)
            config["steps"] = config.get("steps", 0)
        else:
            raise DetectorDataError(f"method must be 'head' or 'lora', got {method!r}.")
        detector = StanceDetector(path=out, backend="torch" if method == "lora" else None)
        scores = detector.predict([(e.claim, e.draft, e.question) for e in test])
        probs = np.array([[getattr(s, name) for name in STANCE_LABELS] for s in scores])
        metrics = {"kind": kind, "method": method, "train_rows": len(train), "test_rows": len(test),
                   "steps": config.get("steps"),
                   **stance_metrics([e.label for e in test], probs)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_card(out, kind, str(data), command, metrics)
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the detectors' default weights from ../shared/data.")
    parser.add_argument("--default", choices=["emotion", "stance", "all"], required=True)
    parser.add_argument("--tuned", type=Path, default=None,
                        help="emotion: a trained LoRA emotion encoder folder (python -m training.emotion_encoder) to stack "
                             "instead of training one (~25 min on 2 cores)")
    args = parser.parse_args(argv)
    if args.default in ("emotion", "all"):
        print(json.dumps(train_default_emotion(tuned=args.tuned), indent=2))
    if args.default in ("stance", "all"):
        from training.detector_stance import train_default

        print(json.dumps(train_default(), indent=2))


if __name__ == "__main__":
    main()
