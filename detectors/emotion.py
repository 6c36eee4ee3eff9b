"""Emotion of a user message: sadness, anger, joy, fear, overall distress, and a separate crisis flag.

The scores stack three scorers, mixed and calibrated per output: a small MLP head over the shared
MiniLM sentence vector (``detectors.encoder``, computed once per message for every detector), a
lexical model, and a LoRA-tuned copy of the encoder (``detectors.emotion_encoder``, one extra pass)
that reads the emotion the frozen vector misses. Default weights live in ``detectors/weights/emotion/``
(trained on GoEmotions + CARER, see its README); ``EmotionDetector(path=DIR)`` loads weights written
by ``guardrail train-detector emotion`` (a head and lexical model; no tuned encoder).

The crisis flag (self-harm or suicidal intent) combines written cue patterns with a linear head over the
shared sentence vector and its similarity to written crisis and non-crisis prototypes (e.g. "this homework
is killing me" is a non-crisis prototype), fitted on written crisis messages (``training.crisis_head``),
so idioms and medicine questions do not trip it and paraphrases without any cue word still do.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from detectors import models
from detectors.emotion_encoder import ADAPTER_FILE, TunedEmotionScorer
from detectors.encoder import MAX_TOKENS, get_encoder
from detectors.text import SEPARATOR, validate_text, window
from detectors.tokens import TokenizerCore
from detectors.types import EmotionScores

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_PATH = WEIGHTS_DIR / "emotion"
CRISIS_FILE = WEIGHTS_DIR / "crisis.json"
TUNED_DIR = "tuned"  # the LoRA emotion encoder inside a weights folder (detectors.emotion_encoder)
HISTORY_TURNS = 3
# The window a long message is read through by the encoders and the lexical model (``read_window``):
# its first and last characters, then its first and last word pieces, so the sad opening and the
# closing question of a long message both fit the encoders' 256 tokens. Crisis cue patterns (linear,
# cheap, and the costliest miss) still read the whole message.
HEAD_CHARS, TAIL_CHARS = 2_000, 2_000
HEAD_TOKENS, TAIL_TOKENS = 120, 120
HISTORY_WEIGHT = 0.6  # how much an earlier sad turn carries into the current one
_PARALLEL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="emotion-tuned")


class WeightsError(ValueError):
    """A weights folder is missing files or is for another detector; the message names the fix."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


class _Head:
    """The numpy MLP head: relu(x W1 + b1) W2 + b2, stacked with the other scorers and calibrated.

    A folder with a tuned encoder holds two stacks: the full one (MLP + lexical + tuned encoder) and a
    fast one without the tuned encoder's pass (``use_tuned=False``), each with its own sadness threshold."""

    def __init__(self, folder: Path, use_tuned: bool = True) -> None:
        config_path, head_path = folder / "config.json", folder / "head.npz"
        if not config_path.is_file() or not head_path.is_file():
            raise WeightsError(
                f"{folder} has no emotion weights (config.json + head.npz): pass the --out folder of "
                f"`guardrail train-detector emotion`, or no path for the defaults."
            )
        self.config = json.loads(config_path.read_text())
        if self.config.get("kind") != "emotion-mlp":
            raise WeightsError(f"{folder} holds {self.config.get('kind')!r} weights, not emotion weights.")
        arrays = np.load(head_path)
        self.w1, self.b1, self.w2, self.b2 = (arrays[k] for k in ("w1", "b1", "w2", "b2"))
        self.lexical = _Lexical(folder / "lexical.npz") if (folder / "lexical.npz").is_file() else None
        self.targets: list[str] = list(self.config["targets"])
        self.sadness_threshold = float(self.config.get("sadness_threshold", 0.5))
        self.a, self.b = arrays["platt_a"], arrays["platt_b"]
        self.c = arrays["lex_weight"] if "lex_weight" in arrays else None
        self.d = None
        self.sentence_stack: tuple[np.ndarray, ...] | None = None  # lexical + tuned encoder, for single sentences
        if use_tuned and "tuned_weight" in arrays:
            self.a, self.b, self.c, self.d = (arrays[k] for k in ("full_a", "full_b", "full_lex", "tuned_weight"))
            self.sentence_stack = tuple(arrays[k] for k in ("sentence_lex", "sentence_b", "sentence_tuned"))
        elif "tuned_weight" in arrays:
            self.sadness_threshold = float(self.config.get("fast_sadness_threshold", 0.5))
        self.tuned_folder = folder / TUNED_DIR if self.d is not None else None
        self._scorers: dict[str | None, TunedEmotionScorer] = {}
        if self.tuned_folder is not None and not (self.tuned_folder / ADAPTER_FILE).is_file():
            raise WeightsError(f"{folder} stacks a tuned encoder but {self.tuned_folder / ADAPTER_FILE} is missing: "
                               f"copy the folder whole, or retrain it.")

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated MLP logits."""
        hidden = np.maximum(x @ self.w1 + self.b1, 0.0)
        return hidden @ self.w2 + self.b2

    def tuned(self, backend: str | None = None) -> TunedEmotionScorer | None:
        """The LoRA-tuned encoder stacked into this head, if it has one (loaded once per process)."""
        if self.tuned_folder is None:
            return None
        if backend in self._scorers:  # asked at every predict: skip the path resolving of the process cache's key
            return self._scorers[backend]
        folder = self.tuned_folder

        def build() -> TunedEmotionScorer:
            scorer = TunedEmotionScorer(folder, backend)
            if scorer.targets != self.targets:
                raise WeightsError(f"{folder} scores {scorer.targets}, the head {self.targets}: retrain them together.")
            return scorer

        scorer = models.cached_object(("emotion-tuned", str(folder.resolve()), str(backend)), build)
        self._scorers[backend] = scorer
        return scorer

    def sentence_probabilities(self, texts: Sequence[str], tuned_logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of single sentences from the lexical model and the tuned encoder only
        (no shared-encoder pass: a message's sentences cost only the tuned pass)."""
        assert self.sentence_stack is not None and self.lexical is not None
        lex_w, b, tuned_w = self.sentence_stack
        return _sigmoid(lex_w * self.lexical.logits(texts) + tuned_w * tuned_logits + b)

    def __call__(self, x: np.ndarray, texts: Sequence[str] | None = None, backend: str | None = None,
                 tuned_logits: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probabilities; the lexical model's and the tuned encoder's logits are stacked in
        where the head has them (both need the texts; ``tuned_logits`` if already computed)."""
        z = self.a * self.raw(x) + self.b
        if self.lexical is not None and self.c is not None and texts is not None:
            z = z + self.c * self.lexical.logits(texts)
        scorer = self.tuned(backend)
        if scorer is not None and texts is not None:
            z = z + self.d * (tuned_logits if tuned_logits is not None else scorer.logits(texts))
        return _sigmoid(z)


_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class _Lexical:
    """Word uni/bigram TF-IDF logistic scores (sublinear tf, L2-normalised, sklearn's tokenisation)."""

    def __init__(self, path: Path) -> None:
        arrays = np.load(path)
        self.index = {term: i for i, term in enumerate(arrays["vocab"].tolist())}
        self.idf, self.coef, self.intercept = arrays["idf"], arrays["coef"], arrays["intercept"]

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        out = np.tile(self.intercept, (len(texts), 1)).astype(np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(text.lower())
            counts: dict[int, int] = {}
            for gram in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
                j = self.index.get(gram)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if not counts:
                continue
            idx = np.fromiter(counts, dtype=np.int64)
            weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64))) * self.idf[idx]
            weights /= max(float(np.linalg.norm(weights)), 1e-12)
            out[row] += weights.astype(np.float32) @ self.coef[idx]
        return out


class _Lowered:
    """A lower-case cue regex searched in lower-cased text, its leading ``\\b`` checked by hand: a pattern
    that starts with ``\\b`` (or is case-insensitive) defeats ``re``'s scan for the first literal, and 17
    such patterns over 200,000 characters took 240 ms; this way they take about 20."""

    def __init__(self, pattern: str) -> None:
        self.word_start = pattern.startswith(r"\b")
        self.regex = re.compile(pattern[2:] if self.word_start else pattern)

    def search(self, low: str, pos: int = 0, endpos: int | None = None) -> re.Match[str] | None:
        end = len(low) if endpos is None else endpos
        while (hit := self.regex.search(low, pos, end)) is not None:
            p = hit.start()
            if not self.word_start or (p > 0 and _is_word(low[p - 1])) != (p < len(low) and _is_word(low[p])):
                return hit
            pos = hit.start() + 1  # not at a word start: the original \b would not match here
        return None


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class _CuePattern:
    """A crisis cue: one regex, or a ``{"cue": A, "then": B}`` pair (B later on the same line as A).

    The pair replaces ``A.*B``, which re-reads the rest of the line from every A (a message repeating
    "can't go on anymore" to 64 KB took 10 s); here each line is read once for A and, from its first A,
    once for B, which finds the same lines. ``search`` takes lower-cased text (see ``_Lowered``)."""

    def __init__(self, cue: str, then: str | None = None) -> None:
        self.cue = _Lowered(cue)
        self.then = _Lowered(then) if then is not None else None

    @classmethod
    def load(cls, spec: str | dict[str, str]) -> "_CuePattern":
        if isinstance(spec, str):
            return cls(spec)
        if set(spec) != {"cue", "then"}:
            raise WeightsError(f"crisis pattern {spec!r} must be a regex string or {{'cue': ..., 'then': ...}}.")
        return cls(spec["cue"], spec["then"])

    def search(self, low: str) -> bool:
        text = low
        if self.then is None:
            return self.cue.search(text) is not None
        pos = 0
        while (hit := self.cue.search(text, pos)) is not None:
            line_end = text.find("\n", hit.end())
            line_end = len(text) if line_end < 0 else line_end
            if self.then.search(text, hit.end(), line_end):
                return True
            pos = line_end + 1
        return False


class CrisisScorer:
    """Self-harm / suicidal-intent score in [0, 1] from cue patterns and prototype similarity."""

    def __init__(self, encoder_name: str | None = None, backend: str | None = None) -> None:
        self.backend = backend
        spec = json.loads(CRISIS_FILE.read_text())
        self.positive: list[str] = spec["positive"]
        self.negative: list[str] = spec["negative"]
        self.scale, self.margin = float(spec["scale"]), float(spec["margin"])
        self.floor = float(spec.get("floor", 0.0))
        self.patterns = [_CuePattern.load(p) for p in spec["patterns"]]
        self.idioms = [re.compile(p, re.IGNORECASE) for p in spec["idioms"]]
        head = spec.get("head")  # a linear head fitted by training.crisis_head; without one, the prototypes score
        self.head = None if head is None else (np.asarray(head["weights"], dtype=np.float32), float(head["bias"]))
        self.encoder_name = encoder_name
        self._pos: np.ndarray | None = None
        self._neg: np.ndarray | None = None

    def _prototypes(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pos is None:
            encoder = get_encoder(self.encoder_name, self.backend)
            self._pos = encoder.encode(self.positive).vectors
            self._neg = encoder.encode(self.negative).vectors
        return self._pos, self._neg  # type: ignore[return-value]

    def pattern_hit(self, text: str) -> bool:
        low = text.lower()
        if not any(p.search(low) for p in self.patterns):  # every pattern runs in linear time
            return False
        cleaned = text
        for idiom in self.idioms:
            cleaned = idiom.sub(" ", cleaned)
        return any(p.search(cleaned.lower()) for p in self.patterns)

    def score(self, texts: Sequence[str], vectors: np.ndarray, patterns_on: Sequence[str] | None = None) -> np.ndarray:
        """Scores of ``texts`` (whose vectors are ``vectors``); the cue patterns read ``patterns_on``
        instead where given (the whole messages that ``texts`` are windows of)."""
        if len(texts) == 0:
            return np.zeros(0)
        x = self.head_features(vectors)
        if self.head is not None:
            weights, bias = self.head
            similarity = _sigmoid(x @ weights + bias)
        else:
            similarity = 0.95 * _sigmoid(self.scale * (x[:, -2] - x[:, -1] - self.margin))
        hits = np.array([self.pattern_hit(t) for t in (patterns_on or texts)], dtype=float)
        # a cue pattern is strong evidence; similarity alone needs a clear margin over the idioms
        return np.where(hits > 0, np.maximum(similarity, 0.9), similarity)

    def head_features(self, vectors: np.ndarray) -> np.ndarray:
        """The sentence vector, then its max cosine to the crisis prototypes and to the safe ones (the
        latter at least ``floor``): what the head reads."""
        pos, neg = self._prototypes()
        sim_pos = (vectors @ pos.T).max(1)
        sim_neg = np.maximum((vectors @ neg.T).max(1), self.floor)
        return np.hstack([vectors, sim_pos[:, None], sim_neg[:, None]]).astype(np.float32)


def read_window(text: str, core: TokenizerCore) -> tuple[str, bool]:
    """(what the encoders and the lexical model read of ``text``, whether anything was left out): the whole
    text when it fits the encoders' window (``MAX_TOKENS``, as before), else the first ``HEAD_TOKENS`` and
    the last ``TAIL_TOKENS`` word pieces of its first and last ``HEAD_CHARS``/``TAIL_CHARS`` characters."""
    view = window(text, HEAD_CHARS, TAIL_CHARS)
    cut, room = view.truncated, MAX_TOKENS - 2  # [CLS] and [SEP]
    if len(view.text) <= room:  # a word piece covers at least one character
        return view.text, cut
    ((_, offsets),) = core.pieces([view.text])
    if len(offsets) <= room:
        return view.text, cut
    head_end, tail_start = offsets[HEAD_TOKENS - 1][1], offsets[len(offsets) - TAIL_TOKENS][0]
    return view.text[:head_end] + SEPARATOR + view.text[tail_start:], True


class EmotionDetector:
    """``predict(texts, histories=None) -> list[EmotionScores]`` (see the module docstring)."""

    def __init__(self, path: str | Path | None = None, *, encoder: str | None = None, backend: str | None = None,
                 tuned: bool = True) -> None:
        folder = Path(path).expanduser() if path is not None else DEFAULT_PATH
        if path is not None and not folder.is_dir():
            raise WeightsError(f"emotion weights folder {folder} does not exist: pass the --out folder of train-detector.")
        self.path = folder
        # tuned=False skips the tuned encoder's pass: about twice the batched throughput, lower sadness F1
        self.head: _Head = models.cached_object(("emotion-head", str(folder.resolve()), str(tuned)),
                                                lambda: _Head(folder, use_tuned=tuned))
        # a user head may score only some emotions: the default head fills in the rest
        missing = {"sadness", "anger", "joy", "fear", "distress"} - set(self.head.targets)
        self.fallback: _Head | None = None
        if missing and folder.resolve() != DEFAULT_PATH.resolve() and (DEFAULT_PATH / "head.npz").is_file():
            self.fallback = models.cached_object(("emotion-head", str(DEFAULT_PATH.resolve()), str(tuned)),
                                                 lambda: _Head(DEFAULT_PATH, use_tuned=tuned))
        self.encoder_name = encoder or None
        self.backend = backend  # None: the shared default (int8 ONNX unless GUARDRAIL_ENCODER_BACKEND=torch)
        self.crisis = models.cached_object(("crisis-scorer", str(encoder), str(backend)), lambda: CrisisScorer(encoder, backend))
        self.crisis_threshold = float(self.head.config.get("crisis_threshold", 0.5))
        for head in (self.head, self.fallback):  # load the tuned encoders now, not inside a check's time budget
            if head is not None:
                head.tuned(backend)

    @property
    def sadness_threshold(self) -> float:
        """The sadness probability at which a user counts as sad, calibrated with these weights (metrics.json)."""
        return self.head.sadness_threshold

    def _probabilities(self, vectors: np.ndarray, texts: Sequence[str], tuned_logits: np.ndarray | None = None) -> dict[str, np.ndarray]:
        probs = self.head(vectors, texts, self.backend, tuned_logits) if len(vectors) else np.zeros((0, len(self.head.targets)))
        out = {name: probs[:, j] for j, name in enumerate(self.head.targets)}
        if self.fallback is not None and len(vectors):
            extra = self.fallback(vectors, texts, self.backend)
            for j, name in enumerate(self.fallback.targets):
                out.setdefault(name, extra[:, j])
        for name in ("sadness", "anger", "joy", "fear"):
            out.setdefault(name, np.zeros(len(vectors)))
        if "distress" not in out:  # a user head without it: any of the negative emotions
            out["distress"] = 1 - (1 - out["sadness"]) * (1 - out["anger"]) * (1 - out["fear"])
        return out

    def warmup(self) -> None:
        """Do the one-off work of a first call (the crisis prototypes' vectors, the first pass of each graph)."""
        self.predict(["Hello, how are you today?"])

    def predict(self, texts: Sequence[str], histories: Sequence[Sequence[str]] | None = None) -> list[EmotionScores]:
        """Scores per message. A long message (and each earlier turn) is read through ``read_window``
        (``truncated=True`` then); crisis cue patterns read all of it."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of str: wrap one message as [message].")
        clean = [validate_text(t, f"texts[{i}]") for i, t in enumerate(texts)]
        if histories is not None and len(histories) != len(clean):
            raise ValueError(f"histories has {len(histories)} entries for {len(clean)} texts: pass one list per text.")
        past: list[list[str]] = []
        for i, history in enumerate(histories or [[] for _ in clean]):
            if isinstance(history, str):
                raise TypeError(f"histories[{i}] must be a list of earlier user turns, not a str.")
            turns = [validate_text(t, f"histories[{i}][{j}]") for j, t in enumerate(history)]
            past.append([t for t in turns[-HISTORY_TURNS:] if t.strip()])
        if not clean:
            return []
        encoder = get_encoder(self.encoder_name, self.backend)
        whole = clean + [t for turns in past for t in turns]
        views = [read_window(t, encoder.core) for t in whole]
        flat = [v for v, _ in views]
        tuned = self.head.tuned(self.backend)
        if tuned is not None and tuned.split and self.encoder_name is None:  # one pass: the shared encoder's states come with the tuned ones
            tuned_scores, shared_states = tuned.score_shared(flat)
            encoder.adopt(shared_states)
            encoded = encoder.encode(flat)  # found in the cache, unless a text's scores were cached and its vector was not
        else:  # the tuned encoder's pass runs beside the shared encoder's (ONNX Runtime releases the GIL)
            pending = _PARALLEL.submit(tuned.score, flat) if tuned is not None else None
            encoded = encoder.encode(flat)
            tuned_scores = pending.result() if pending is not None else None
        probs = self._probabilities(encoded.vectors, flat,
                                    None if tuned_scores is None else np.stack([s.whole for s in tuned_scores]))
        # each sentence of a message, pooled from the same pass, scored by the tuned encoder + lexical model
        by_sentence: list[np.ndarray | None] = [None] * len(clean)
        if tuned_scores is not None and self.head.sentence_stack is not None:
            for i, scored in enumerate(tuned_scores[: len(clean)]):
                if len(scored.sentences):
                    by_sentence[i] = self.head.sentence_probabilities(scored.sentence_texts, scored.sentences)
        crisis = self.crisis.score(flat, encoded.vectors, patterns_on=whole)
        empty = np.array([not t.strip() for t in whole])  # a window of blanks may hide a crisis cue: judge the whole text
        for name in probs:
            probs[name] = np.where(empty, 0.0, probs[name])
        crisis = np.where(empty, 0.0, crisis)

        results, offset = [], len(clean)
        for i in range(len(clean)):
            row = {name: float(values[i]) for name, values in probs.items()}
            crisis_score = float(crisis[i])
            n = len(past[i])
            if n:
                idx = slice(offset, offset + n)
                weights = HISTORY_WEIGHT ** np.arange(n, 0, -1)  # recent turns count more
                for name in ("sadness", "fear", "anger", "distress"):
                    earlier = float((probs[name][idx] * weights).sum() / weights.sum())
                    row[name] = max(row[name], HISTORY_WEIGHT * earlier)
                crisis_score = max(crisis_score, 0.9 * float(crisis[idx].max()))
                offset += n
            sentences = by_sentence[i]
            if sentences is not None:  # a sentence that reads sad (or afraid, angry) lifts its message
                strongest = sentences.max(0)
                for j, name in enumerate(self.head.targets):
                    if name in ("sadness", "fear", "anger", "distress"):
                        row[name] = max(row[name], float(strongest[j]))
            results.append(EmotionScores(
                sadness=_unit(row["sadness"]), anger=_unit(row["anger"]), joy=_unit(row["joy"]),
                fear=_unit(row["fear"]), distress=_unit(row["distress"]),
                crisis=crisis_score >= self.crisis_threshold, crisis_score=_unit(crisis_score),
                truncated=bool(encoded.truncated[i] or views[i][1]),
            ))
        return results


def _unit(x: float) -> float:
    return float(min(1.0, max(0.0, x)))
