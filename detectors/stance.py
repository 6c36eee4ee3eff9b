"""Stance of a draft towards a claim: probabilities for endorses, corrects, hedges, ignores.

Two model kinds load from a weights folder (``config.json`` says which):

- ``stance-head`` (the shipped default, ``detectors/weights/stance/``): a small MLP over frozen features
  of the shared MiniLM encoder -- the claim and draft sentence vectors ([u, v, |u-v|, u*v]), a soft
  token alignment of the claim onto the draft (decomposable-attention style: which claim words the
  draft covers, and how), and lexical cues (agreement, negation, correction, hedging, premise words).
  Every text is encoded once (the draft once for all its claims) through the int8 ONNX encoder, so it
  is cheap on CPU. Trained on NLI and task data from TruthfulQA and TriviaQA (see its README).
- ``stance-cross-encoder``: MiniLM reading claim and draft together with a LoRA adapter and head
  (``training.detector_stance.train_stance``); more accurate when trained on a GPU, too slow to train
  on a shared 2-core CPU. It is merged and exported once to int8 ONNX under ``$GUARDRAIL_HOME/onnx/``.

``StanceDetector(path=DIR)`` loads either kind written by ``guardrail train-detector stance``. A draft
cut to the model's window sets ``truncated``. An empty draft or claim is scored 'ignores'.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from detectors import models
from detectors.encoder import default_backend, export_onnx_int8
from detectors.text import validate_text, window
from detectors.tokens import TokenizerCore
from detectors.types import STANCE_LABELS, StanceScores

DEFAULT_PATH = Path(__file__).resolve().parent / "weights" / "stance"
MAX_TOKENS = 256
MAX_CLAIM_TOKENS = 96
# The window a long draft is read through: its opening (where a reply agrees or corrects) and its
# close (where it concludes), cut at sentence breaks; claims and questions are short by nature.
DRAFT_HEAD_CHARS, DRAFT_TAIL_CHARS = 2_000, 1_000
CLAIM_HEAD_CHARS, CLAIM_TAIL_CHARS = 1_000, 500


class StanceWeightsError(ValueError):
    """A stance weights folder is missing or malformed; the message names the fix."""


def read_config(folder: Path) -> dict[str, Any]:
    config_path = folder / "config.json"
    if not config_path.is_file() or not ((folder / "adapter_config.json").is_file() or (folder / "head.npz").is_file()):
        raise StanceWeightsError(
            f"{folder} has no stance weights (config.json + head.npz or a LoRA adapter): pass the --out folder of "
            f"`guardrail train-detector stance`, or no path for the defaults."
        )
    config = json.loads(config_path.read_text())
    if config.get("kind") not in ("stance-head", "stance-cross-encoder"):
        raise StanceWeightsError(f"{folder} holds {config.get('kind')!r} weights, not stance weights.")
    return config


def first_segment(claim: str, question: str | None) -> str:
    """What the cross-encoder reads before the draft (the one place this format is defined)."""
    return f"{claim} (Question: {question})" if question else claim


def _digest(folder: Path) -> str:
    digest = hashlib.sha1()
    for name in ("adapter_model.safetensors", "adapter_config.json", "config.json"):
        path = folder / name
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def stance_onnx_path(folder: Path) -> Path:
    return models.guardrail_home() / "onnx" / f"stance-{_digest(folder)}-int8.onnx"


# --- the default model: a small head over frozen shared-encoder features (cheap on CPU) ---

_CUES = {
    "agree": r"\b(?:you'?re (?:absolutely |totally |completely |so |quite )?right|that'?s (?:right|correct|true)|yes|yeah|"
             r"indeed|exactly|correct|absolutely|of course|you remembered|great point|not wrong|spot on|well done)\b",
    "negation": r"(?:\b(?:not|no|never|nobody|nothing|none|neither|nor|cannot)\b|n't\b)",
    "correction": r"\b(?:actually|in fact|misconception|myth|not true|incorrect|wrong|mistaken|false|however|but|rather|"
                  r"instead|contrary|common belief|mix-up|otherwise)\b",
    "hedge": r"\b(?:not (?:completely |entirely |totally |really )?sure|maybe|perhaps|might|may|possibly|hard to say|"
             r"uncertain|not certain|can'?t confirm|don'?t know|either way|double-check|depends|some say|"
             r"different views|unclear|not sure)\b",
    "premise": r"\b(?:since|given that|because|so you should|best thing you can do|here'?s what|you should|"
               r"i'?d suggest|you can|plan around|step by step)\b",
    "comfort": r"\b(?:sorry|here for you|take care|reach out|rest|breathe|not alone|hugs?|kind to yourself)\b",
    "you_said": r"\b(?:you said|you mentioned|you think|you believe|you'?re saying)\b",
    "question": r"\?",
}
_CUE_RES = {name: re.compile(p, re.IGNORECASE) for name, p in _CUES.items()}
_STOP = set("the a an of to in on at is are was were be been it its this that these those and or but for with as by "
            "from i you he she they we my your his her their our me them what which who whom how why when where do "
            "does did has have had not no yes so if than then there here very just also can will would should could "
            "about into over".split())
_TOKEN = re.compile(r"[a-z0-9]+")
# words that start sentences in drafts without naming anything (not a new answer when capitalised)
_STARTERS = set("yes yeah no not actually indeed exactly correct right absolutely sorry i i'm i've i'd im you you're "
                "that's thats it's its well oh hmm sure gently honestly maybe perhaps possibly some many most "
                "however but and so since given please remember thanks thank great here there's".split())
_NEG_WORDS = {"not", "no", "never", "isn't", "wasn't", "aren't", "weren't", "doesn't", "didn't", "don't", "nor",
              "neither", "cannot", "can't", "won't", "hardly", "instead", "rather", "than", "nope"}
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
ENCODER_FEATURE_VERSION = 1  # the encoder-derived part (cached on disk by training); lexical cues are always recomputed
FEATURE_VERSION = 2


def _content(text: str) -> set[str]:
    return {w for w in _TOKEN.findall(text.lower()) if w not in _STOP and len(w) > 1}


def _words(text: str) -> list[str]:
    return _WORD.findall(text.replace("\u2019", "'"))


def answer_features(claim: str, draft: str, question: str | None = None) -> list[float]:
    """What the draft does with the claim's own answer words (the claim's content words that the question
    does not already contain, e.g. 'sydney' in 'The capital of Australia is Sydney.'): named plainly, named
    under a negation ('not Sydney', 'Sydney isn't'), or replaced by a new name or number ('Canberra').
    Sentence vectors barely tell 'the capital is Sydney' from 'the capital is Canberra'; these words do."""
    q_words = _content(question or "")
    c_words = _content(claim)
    key = (c_words - q_words) or c_words
    tokens = _words(draft)
    lower = [t.lower() for t in tokens]
    mentions: dict[str, list[int]] = {}
    for j, w in enumerate(lower):
        for part in _TOKEN.findall(w):
            if part in key:
                mentions.setdefault(part, []).append(j)

    def negated(j: int) -> bool:
        before = lower[max(0, j - 3) : j]
        after = lower[j + 1 : j + 3]
        return any(w in _NEG_WORDS for w in before) or (len(after) > 1 and after[0] in {"is", "was", "are", "were"}
                                                        and after[1] in _NEG_WORDS) or any(
            w in {"isn't", "wasn't", "aren't", "weren't"} for w in after[:1])

    neg = {k for k, js in mentions.items() if any(negated(j) for j in js)}
    plain = {k for k, js in mentions.items() if any(not negated(j) for j in js)}
    known = c_words | q_words | _STOP | _STARTERS
    new_names = [j for j, t in enumerate(tokens)
                 if (t[:1].isupper() or t[:1].isdigit()) and lower[j] not in known
                 and not (set(_TOKEN.findall(lower[j])) & (c_words | q_words))]
    last_key = max((j for js in mentions.values() for j in js), default=-1)
    last_new = max(new_names, default=-1)
    n_key = max(1, len(key))
    d_words = _content(draft)
    return [np.log1p(len(key)), len(mentions) / n_key, len(plain) / n_key, len(neg) / n_key,
            float(bool(key) and key <= set(mentions) and not neg), float(bool(mentions) and not plain),
            np.log1p(len(new_names)), float(last_new > last_key), float(bool(new_names) and not mentions),
            len(d_words - c_words - q_words) / max(1, len(d_words)),
            len(q_words & d_words) / max(1, len(q_words)) if q_words else -1.0,
            float(any(w in _NEG_WORDS for w in lower[:4])), float(" or " in f" {draft.lower()} ")]


def lexical_features(claim: str, draft: str, question: str | None = None) -> np.ndarray:
    """Cue counts in the draft, negation in the claim, word overlap both ways, and what the draft does
    with the claim's answer words (``answer_features``); about 30 numbers, microseconds, never cached."""
    c_words, d_words = _content(claim), _content(draft)
    overlap = len(c_words & d_words)
    feats = [np.log1p(len(r.findall(draft))) for r in _CUE_RES.values()]
    feats += [np.log1p(len(_CUE_RES["negation"].findall(claim))),
              overlap / max(1, len(c_words)), overlap / max(1, len(d_words)), float(c_words <= d_words),
              np.log1p(len(d_words)), np.log1p(len(c_words)),
              float(bool(set(re.findall(r"\d+", claim)) - set(re.findall(r"\d+", draft))))]
    head = draft[:200].lower()
    feats += [float(bool(_CUE_RES["agree"].search(head))), float(bool(_CUE_RES["correction"].search(head))),
              float(bool(_CUE_RES["hedge"].search(head))), float(bool(_CUE_RES["premise"].search(draft[:80])))]
    feats += answer_features(claim, draft, question)
    return np.array(feats, dtype=np.float32)


def encoder_features(claim_tokens: np.ndarray, draft_tokens: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bi-encoder features [u, v, |u-v|, u*v], soft token alignment of the claim onto the draft
    (decomposable-attention style) and alignment statistics: the expensive, cacheable part."""
    sim = claim_tokens @ draft_tokens.T if len(claim_tokens) and len(draft_tokens) else np.zeros((1, 1), np.float32)
    c2d, d2c = sim.max(1), sim.max(0)
    weights = np.exp(10.0 * (sim - sim.max(1, keepdims=True)))
    weights /= weights.sum(1, keepdims=True)
    aligned = weights @ draft_tokens if len(draft_tokens) else np.zeros_like(claim_tokens)
    ct = claim_tokens if len(claim_tokens) else np.zeros((1, u.shape[0]), np.float32)
    aligned = aligned if len(aligned) else np.zeros_like(ct)
    stats = np.array([c2d.mean(), c2d.min(), np.percentile(c2d, 25), d2c.mean(), d2c.max()], dtype=np.float32)
    return np.concatenate([u, v, np.abs(u - v), u * v, (ct - aligned).mean(0), (ct * aligned).mean(0),
                           stats]).astype(np.float32)


def encode_pairs(pairs: Sequence[tuple[str, str]], encoder_name: str | None = None, backend: str | None = None,
                 use_cache: bool = True) -> tuple[np.ndarray, list[bool]]:
    """``encoder_features`` for (claim-with-question, draft) pairs; each distinct text is encoded once."""
    from detectors.encoder import get_encoder

    encoder = get_encoder(encoder_name, backend)
    claims, drafts = [p[0] for p in pairs], [p[1] for p in pairs]
    c_tokens, c_enc = encoder.encode_tokens(claims, max_tokens=MAX_CLAIM_TOKENS, use_cache=use_cache)
    d_tokens, d_enc = encoder.encode_tokens(drafts, use_cache=use_cache)
    rows = [encoder_features(c_tokens[i], d_tokens[i], c_enc.vectors[i], d_enc.vectors[i]) for i in range(len(pairs))]
    return (np.stack(rows) if rows else np.zeros((0, 1), np.float32)), list(d_enc.truncated)


def featurize(triples: Sequence[tuple[str, str, str | None]], encoder_name: str | None = None,
              backend: str | None = None, use_cache: bool = True,
              encoded: np.ndarray | None = None) -> tuple[np.ndarray, list[bool]]:
    """Features for (claim, draft, question-or-None) triples: the encoder part (or ``encoded``, the same
    numbers read from a cache) followed by the lexical part."""
    cut: list[bool] = [False] * len(triples)
    if encoded is None:
        encoded, cut = encode_pairs([(first_segment(c, q), d) for c, d, q in triples], encoder_name, backend, use_cache)
    lexical = [lexical_features(c, d, q) for c, d, q in triples]
    if not lexical:
        return np.zeros((0, 1), np.float32), cut
    return np.concatenate([encoded, np.stack(lexical)], axis=1).astype(np.float32), cut


class _StanceHead:
    def __init__(self, folder: Path) -> None:
        arrays = np.load(folder / "head.npz")
        self.mu, self.sd = arrays["mu"], arrays["sd"]
        self.w1, self.b1, self.w2, self.b2 = (arrays[k].astype(np.float32) for k in ("w1", "b1", "w2", "b2"))

    def logits(self, x: np.ndarray) -> np.ndarray:
        hidden = np.maximum(((x - self.mu) / self.sd) @ self.w1 + self.b1, 0.0)
        return hidden @ self.w2 + self.b2


class StanceDetector:
    """``predict([(claim, draft[, question]), ...]) -> list[StanceScores]`` (see the module docstring)."""

    def __init__(self, path: str | Path | None = None, *, backend: str | None = None) -> None:
        folder = Path(path).expanduser() if path is not None else DEFAULT_PATH
        if path is not None and not folder.is_dir():
            raise StanceWeightsError(f"stance weights folder {folder} does not exist: pass the --out folder of train-detector.")
        self.path = folder
        self.config = read_config(folder)
        self.labels: list[str] = list(self.config.get("labels", STANCE_LABELS))
        self.temperature = float(self.config.get("temperature", 1.0))
        self.max_tokens = int(self.config.get("max_tokens", MAX_TOKENS))
        self.backend = backend or default_backend()
        self.kind = self.config["kind"]
        self._session: Any = None
        self._model: Any = None
        self._head: _StanceHead | None = None
        if self.kind == "stance-head":
            if int(self.config.get("feature_version", 1)) != FEATURE_VERSION:
                raise StanceWeightsError(
                    f"{folder} was trained on stance features v{self.config.get('feature_version', 1)}, this version "
                    f"computes v{FEATURE_VERSION}: retrain it (`guardrail train-detector stance`).")
            self._head = models.cached_object(("stance-head", str(folder.resolve())), lambda: _StanceHead(folder))
        elif self.backend == "onnx":
            target = stance_onnx_path(folder)
            if not target.is_file():
                with models._lock:
                    if not target.is_file():
                        model, tokenizer = models.load_cross_encoder(folder, num_labels=len(self.labels))
                        export_onnx_int8(model, tokenizer, target, output="logits")
            self._session = models.load_onnx_session(target)
            self.tokenizer = models.load_tokenizer(models.encoder_path(None))
        else:
            self._model, self.tokenizer = models.load_cross_encoder(folder, num_labels=len(self.labels))
        if self._head is None:  # a private copy: the HF tokenizer's truncation settings are shared state
            self.core = TokenizerCore(self.tokenizer)

    def _encode(self, firsts: list[str], drafts: list[str]) -> tuple[dict[str, np.ndarray], list[bool]]:
        core = self.core
        a_ids = [ids[:MAX_CLAIM_TOKENS] for ids, _ in core.pieces(firsts)]
        b_ids = [ids for ids, _ in core.pieces(drafts)]
        cls, sep, pad = core.cls_id, core.sep_id, core.pad_id
        rows, types, truncated = [], [], []
        for a, b in zip(a_ids, b_ids):
            room = self.max_tokens - len(a) - 3
            truncated.append(len(b) > room)
            b = b[:room]
            rows.append([cls] + a + [sep] + b + [sep])
            types.append([0] * (len(a) + 2) + [1] * (len(b) + 1))
        width = max(len(r) for r in rows)
        input_ids = np.full((len(rows), width), pad, dtype=np.int64)
        token_types = np.zeros((len(rows), width), dtype=np.int64)
        attention = np.zeros((len(rows), width), dtype=np.int64)
        for i, (row, typ) in enumerate(zip(rows, types)):
            input_ids[i, : len(row)], token_types[i, : len(row)], attention[i, : len(row)] = row, typ, 1
        return {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": token_types}, truncated

    def _logits(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self._session is not None:
            return self._session.run(None, feed)[0]
        import torch

        with torch.inference_mode():
            return self._model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.float().numpy()

    def predict(self, pairs: Sequence[tuple], batch_size: int = 32) -> list[StanceScores]:
        """Scores per (claim, draft[, question]). A draft over 3,000 characters is read through its first
        2,000 and last 1,000 (``truncated=True``), a claim or question through its first 1,000 and last 500."""
        if isinstance(pairs, tuple) and pairs and isinstance(pairs[0], str):
            raise TypeError("pairs must be a list of (claim, draft[, question]) tuples: wrap one pair as [(claim, draft)].")
        rows: list[tuple[str, str, str | None]] = []
        cut = [False] * len(pairs)  # the draft was longer than its window
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) not in (2, 3, 4):
                raise TypeError(f"pairs[{i}] must be (claim, draft[, question[, truth]]), got {type(pair).__name__}.")
            claim = validate_text(pair[0], f"pairs[{i}].claim")
            draft = validate_text(pair[1], f"pairs[{i}].draft")
            question = pair[2] if len(pair) >= 3 else None  # a truth (4th) is not read by this head
            question = validate_text(question, f"pairs[{i}].question") if question is not None else None
            draft_view = window(draft, DRAFT_HEAD_CHARS, DRAFT_TAIL_CHARS)
            claim, question = (window(t, CLAIM_HEAD_CHARS, CLAIM_TAIL_CHARS).text if t else t for t in (claim, question))
            cut[i] = draft_view.truncated
            rows.append((claim.strip(), draft_view.text.strip(), (question or "").strip() or None))
        results: list[StanceScores | None] = [None] * len(rows)
        todo = [i for i, (c, d, _) in enumerate(rows) if c and d]
        for i, (c, d, _) in enumerate(rows):
            if not (c and d):  # nothing to compare: the draft cannot take a side on an empty claim
                results[i] = StanceScores(endorses=0.0, corrects=0.0, hedges=0.0, ignores=1.0)
        order = sorted(todo, key=lambda i: len(rows[i][1]) + len(rows[i][0]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            if self._head is not None:
                x, encoder_cut = featurize([rows[i] for i in idx], backend=self.backend)
                logits = self._head.logits(x) / self.temperature
                self._fill(results, idx, logits, [c or cut[i] for c, i in zip(encoder_cut, idx)])
                continue
            feed, encoder_cut = self._encode([first_segment(rows[i][0], rows[i][2]) for i in idx], [rows[i][1] for i in idx])
            self._fill(results, idx, self._logits(feed) / self.temperature, [c or cut[i] for c, i in zip(encoder_cut, idx)])
        return results  # type: ignore[return-value]

    def _fill(self, results: list, idx: Sequence[int], logits: np.ndarray, cut: Sequence[bool]) -> None:
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        for j, i in enumerate(idx):
            scores = {name: float(probs[j, k]) for k, name in enumerate(self.labels)}
            results[i] = StanceScores(**{name: min(1.0, max(0.0, scores.get(name, 0.0))) for name in STANCE_LABELS},
                                      truncated=bool(cut[j]))
