"""Emotion training data (GoEmotions, CARER) and the emotion head: an MLP over shared-encoder vectors.

Targets, in order: sadness, anger, joy, fear, distress (multi-label). Each dataset's own labels map to
them as written in ``GOEMOTIONS_TARGETS`` / ``CARER_TARGETS``. The head is trained with torch (tiny:
384 -> 256 -> 5), then each output is Platt-calibrated on a held-out dev set, and stored as a few
numpy arrays (``head.npz``, ~0.4 MB) that ``detectors.emotion`` runs without torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from detectors.data import shared_file

TARGETS = ("sadness", "anger", "joy", "fear", "distress")

# GoEmotions original label names -> our targets. Sadness is the paper's 'sadness' plus 'grief';
# anger/joy/fear follow the GoEmotions Ekman grouping; distress is any sad, afraid or angry label.
GOEMOTIONS_TARGETS = {
    "sadness": {"sadness", "grief"},
    "anger": {"anger", "annoyance", "disapproval"},
    "joy": {"joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief", "pride",
            "admiration", "desire", "caring"},
    "fear": {"fear", "nervousness"},
    "distress": {"sadness", "grief", "disappointment", "remorse", "fear", "nervousness", "anger", "annoyance",
                 "disgust", "embarrassment"},
}
# CARER: 0 sadness, 1 joy, 2 love, 3 anger, 4 fear, 5 surprise.
CARER_TARGETS = {"sadness": {0}, "anger": {3}, "joy": {1, 2}, "fear": {4}, "distress": {0, 3, 4}}


def goemotions_labels() -> list[str]:
    return shared_file("goemotions/original/labels.txt").read_text().split()


def read_goemotions(split: str) -> tuple[list[str], list[list[int]]]:
    """Texts and label ids (into ``goemotions_labels()``) of a GoEmotions split, as in the file."""
    texts, ids = [], []
    with shared_file(f"goemotions/original/{split}.tsv").open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            texts.append(parts[0])
            ids.append([int(i) for i in parts[1].split(",") if i])
    return texts, ids


def load_goemotions(split: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, target matrix (n, 5) and the raw 'sadness' (id 25) label of a GoEmotions split."""
    names = goemotions_labels()
    texts, ids = read_goemotions(split)
    rows, sad = [], []
    for row_ids in ids:
        labels = {names[i] for i in row_ids}
        rows.append([float(bool(labels & GOEMOTIONS_TARGETS[t])) for t in TARGETS])
        sad.append(float("sadness" in labels))
    return texts, np.array(rows, dtype=np.float32), np.array(sad, dtype=np.float32)


def read_carer(split: str) -> tuple[list[str], list[int]]:
    """Texts and label ids (0 sadness .. 5 surprise) of a CARER split ('train' or 'validation')."""
    texts, labels = [], []
    with shared_file(f"emotion_carer/{split}.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            texts.append(row["text"])
            labels.append(int(row["label"]))
    return texts, labels


def load_carer(split: str) -> tuple[list[str], np.ndarray]:
    """Texts and target matrix (n, 5) of a CARER split ('train' or 'validation')."""
    texts, labels = read_carer(split)
    rows = [[float(label in CARER_TARGETS[t]) for t in TARGETS] for label in labels]
    return texts, np.array(rows, dtype=np.float32).reshape(len(texts), len(TARGETS))


def default_emotion_corpus(seed: int = 0, goemotions_limit: int = 7000, carer_limit: int = 7000,
                           dev_limit: int = 1200) -> dict[str, tuple[list[str], np.ndarray]]:
    """Training and dev sets for the default head, subsampled to fit a CPU budget: GoEmotions train
    (every sad or afraid row kept, the rest sampled) + CARER train; dev = a sample of GoEmotions dev
    and CARER train rows not used for training. GoEmotions test and CARER validation stay untouched."""
    rng = np.random.default_rng(seed)
    g_texts, g_y, _ = load_goemotions("train")
    keep = np.flatnonzero(g_y[:, [0, 3]].any(1))
    rest = np.setdiff1d(np.arange(len(g_texts)), keep)
    extra = rng.choice(rest, size=max(0, min(len(rest), goemotions_limit - len(keep))), replace=False)
    chosen = np.sort(np.concatenate([keep, extra]))
    c_texts, c_y = load_carer("train")
    order = rng.permutation(len(c_texts))
    c_dev, c_train = order[:dev_limit], order[dev_limit : dev_limit + carer_limit]
    d_texts, d_y, _ = load_goemotions("dev")
    d_idx = np.sort(rng.choice(len(d_texts), size=min(len(d_texts), dev_limit), replace=False))
    return {
        "train": ([g_texts[i] for i in chosen] + [c_texts[i] for i in c_train],
                  np.concatenate([g_y[chosen], c_y[c_train]])),
        "dev": ([d_texts[i] for i in d_idx] + [c_texts[i] for i in c_dev], np.concatenate([d_y[d_idx], c_y[c_dev]])),
        # the lexical model needs no encoder pass, so it reads every training row (dev rows excluded)
        "lexical": (g_texts + [c_texts[i] for i in order[dev_limit:]], np.concatenate([g_y, c_y[order[dev_limit:]]])),
    }


def train_head(x: np.ndarray, y: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray, *, hidden: int = 256,
               epochs: int = 30, seed: int = 0, lr: float = 2e-3, progress: bool = True) -> dict[str, np.ndarray]:
    """Train a one-hidden-layer MLP (multi-label BCE), keep the best dev epoch, then Platt-calibrate
    each output on dev. Returns the arrays ``detectors.emotion`` loads (w1, b1, w2, b2, platt_a, platt_b)."""
    import torch

    from training.head_fit import fit_best_on_dev

    torch.manual_seed(seed)
    n_out = y.shape[1]
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(hidden, n_out))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    pos = y.mean(0).clip(1e-3, None)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(np.sqrt((1 - pos) / pos), dtype=torch.float32))
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))
    xd, yd = torch.from_numpy(x_dev.astype(np.float32)), torch.from_numpy(y_dev.astype(np.float32))
    fit_best_on_dev(net, loss_fn, opt, (xt, yt), (xd, yd), epochs=epochs, batch_size=256, progress=progress)
    with torch.no_grad():
        dev_logits = net(xd).numpy()
    a, b = platt(dev_logits, y_dev)
    return {
        "w1": net[0].weight.detach().numpy().T.copy(), "b1": net[0].bias.detach().numpy().copy(),
        "w2": net[3].weight.detach().numpy().T.copy(), "b2": net[3].bias.detach().numpy().copy(),
        "platt_a": a, "platt_b": b,
    }


def platt(logits: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column logistic calibration p = sigmoid(a * logit + b), fitted on held-out data."""
    from sklearn.linear_model import LogisticRegression

    a, b = np.ones(logits.shape[1], np.float32), np.zeros(logits.shape[1], np.float32)
    for j in range(logits.shape[1]):
        if len(np.unique(y[:, j])) < 2:
            continue
        model = LogisticRegression(C=100.0).fit(logits[:, j : j + 1], y[:, j])
        a[j], b[j] = model.coef_[0, 0], model.intercept_[0]
    return a, b


def save_head(arrays: dict[str, np.ndarray], out: Path, targets: tuple[str, ...] = TARGETS, **meta: object) -> None:
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "head.npz", **{k: v.astype(np.float32) for k, v in arrays.items()})
    config = {"kind": "emotion-mlp", "targets": list(targets), "encoder": "embedded:all-minilm-l6-v2", **meta}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def train_lexical(texts: list[str], y: np.ndarray, *, max_features: int = 30000, C: float = 4.0) -> dict[str, np.ndarray]:
    """TF-IDF (word 1-2 grams) + one logistic regression per target; the arrays ``_Lexical`` reads."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=3, max_features=max_features,
                                 sublinear_tf=True, token_pattern=r"(?u)\b\w\w+\b", dtype=np.float32)
    matrix = vectorizer.fit_transform(texts)
    coef = np.zeros((matrix.shape[1], y.shape[1]), dtype=np.float32)
    intercept = np.zeros(y.shape[1], dtype=np.float32)
    for j in range(y.shape[1]):
        model = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(matrix, y[:, j])
        coef[:, j], intercept[j] = model.coef_[0], model.intercept_[0]
    vocab = np.array([str(term) for term in vectorizer.get_feature_names_out()], dtype=np.str_)
    return {"vocab": vocab, "idf": vectorizer.idf_.astype(np.float32), "coef": coef, "intercept": intercept}


def stack(y: np.ndarray, first: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Per target p = sigmoid(a * first_logit + sum_k w_k * other_k_logit + b), fitted on dev: the mix and the
    calibration in one step. Returns a, b and one weight array per other scorer (e.g. lexical, tuned encoder)."""
    from sklearn.linear_model import LogisticRegression

    n = y.shape[1]
    a, b = np.ones(n, np.float32), np.zeros(n, np.float32)
    weights = [np.zeros(n, np.float32) for _ in others]
    for j in range(n):
        features = np.stack([first[:, j]] + [o[:, j] for o in others], 1)
        model = LogisticRegression(C=100.0).fit(features, y[:, j])
        a[j], b[j] = model.coef_[0, 0], model.intercept_[0]
        for k in range(len(others)):
            weights[k][j] = model.coef_[0, k + 1]
    return a, b, weights
