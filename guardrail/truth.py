"""Truth sources, tried in order and named in the verdict: a caller's reference, the embedded
misconception index, the re-ask probe, else ``unknown`` (which may annotate but never blocks).

The index matches a stated claim to its entries by sentence-embedding similarity with the shared
encoder (``detectors.models.load_encoder``); each entry has a false ``claim`` and a parallel true
statement (``truth``), so a user who states the truth is matched to the truth side and is not flagged.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from pydantic import BaseModel, Field, ValidationError

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_INDEX_FILE = DATA_DIR / "misconceptions.jsonl"

_NEGATION = re.compile(r"\b(not|no|never|none|nobody|nothing|neither|nor|cannot)\b|n't\b", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s]")
_ARTICLES = re.compile(r"\b(the|a|an)\b")


_CONTRAST = re.compile(r"[,;]\s*(?:and\s+|but\s+)?not\s+[^,.;]+|\brather than\s+[^,.;]+|\binstead of\s+[^,.;]+", re.IGNORECASE)


def negation_parity(text: str) -> int:
    """1 when the sentence carries an odd number of negation cues (so its meaning is flipped).
    A contrast tail ("X, not Y", "rather than Y") does not flip the main clause and is ignored."""
    return len(_NEGATION.findall(_CONTRAST.sub("", text))) % 2


def norm_answer(text: str) -> str:
    """Lower-case, punctuation and articles removed, spaces collapsed: for answer matching."""
    text = _PUNCT.sub(" ", text.lower())
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def contains_answer(text: str, answer: str) -> bool:
    """Whole-word containment of a normalised answer in a normalised text."""
    a = norm_answer(answer)
    if not a:
        return False
    return f" {a} " in f" {norm_answer(text)} "


@dataclass
class TruthResult:
    """The decision of one truth source about one claim."""

    truth: str  # "true" | "false" | "unknown"
    source: str  # "reference" | "misconception_index" | "reask" | "none"
    confidence: float = 0.0
    correction: Optional[str] = None
    entry_id: Optional[str] = None


UNKNOWN = TruthResult("unknown", "none", 0.0)


# --------------------------------------------------------------------------------------- reference
class Reference(BaseModel):
    """What the caller knows: correct answers, known wrong answers, or a passage of context."""

    correct: list[str] = Field(default_factory=list)
    incorrect: list[str] = Field(default_factory=list)
    context: Optional[str] = None

    @classmethod
    def coerce(cls, value: Any) -> Optional["Reference"]:
        """Accept a short answer string, a passage, a list of correct answers, a dict or a Reference."""
        if value is None or isinstance(value, Reference):
            return value
        if isinstance(value, str):
            if not value.strip():
                return None
            return cls(correct=[value]) if len(value.split()) <= 12 else cls(context=value)
        if isinstance(value, (list, tuple)):
            items = [v for v in value if isinstance(v, str) and v.strip()]
            if len(items) != len(value):
                raise TypeError("reference list must hold only non-empty strings (the correct answers).")
            return cls(correct=items) if items else None
        if isinstance(value, dict):
            try:
                return cls(**value)
            except ValidationError as exc:
                raise TypeError(f"reference dict is invalid ({exc.errors()[0]['msg']}): use keys correct, incorrect, context.") from None
        raise TypeError(
            f"reference must be a str, a list of str, a dict or a Reference, got {type(value).__name__}."
        )

    def correction(self) -> Optional[str]:
        if self.correct:
            return f"The correct answer is {self.correct[0].strip().rstrip('.')}."
        if self.context:
            first = re.split(r"(?<=[.!?])\s+", self.context.strip())[0]
            return first[:300]
        return None


def affirmative(claim: str) -> str:
    """The claim with its first negation removed ("X is not Y" -> "X is Y"), for matching."""
    out = re.sub(r"\b(do|does|did|is|are|was|were|can|could|will|would|should|has|have)n't\b", r"\1", claim, count=1, flags=re.I)
    if out == claim:
        out = re.sub(r"\s+\b(not|never)\b", "", claim, count=1, flags=re.I)
    return out


def judge_by_reference(claim: str, polarity: str, reference: Reference) -> TruthResult:
    """Short answers: does the claim give a correct answer, a known wrong one, or some other answer?"""
    if not reference.correct and not reference.incorrect:
        return UNKNOWN
    bare = norm_answer(claim)
    for answer in reference.correct + reference.incorrect:  # an answer may itself say "no" ("it has no name")
        a = norm_answer(answer)
        if a:
            bare = f" {bare} ".replace(f" {a} ", " ").strip()
    denies = polarity == "denies" or negation_parity(bare) == 1
    text = affirmative(claim) if denies else claim
    has_correct = any(contains_answer(text, c) for c in reference.correct)
    has_incorrect = any(contains_answer(text, c) for c in reference.incorrect)
    if has_correct and not has_incorrect:
        truth, conf = "true", 0.9
    elif has_incorrect and not has_correct:
        truth, conf = "false", 0.9
    elif reference.correct and not has_correct and not has_incorrect:
        truth, conf = "false", 0.7  # the user gives an answer other than the known one
    else:
        return UNKNOWN
    if denies:
        truth = "false" if truth == "true" else "true"
    return TruthResult(truth, "reference", conf, reference.correction())


# --------------------------------------------------------------------------------------- the index
class MisconceptionEntry(BaseModel):
    """A false claim people often hold, with a parallel true statement and a short explanation."""

    id: str
    topic: str = "general"
    claim: str
    truth: str
    note: Optional[str] = None
    source: str = "embedded"

    def correction(self) -> str:
        return f"{self.truth} {self.note}".strip() if self.note else self.truth


class IndexMatch(BaseModel):
    """The nearest entry; ``truth`` is the embedding side's verdict ("unknown" when the two sides are
    too close to call: the guard then asks the stance model whether the entry's truth confirms or refutes
    the claim)."""

    entry: MisconceptionEntry
    similarity: float
    truth: str  # "true" | "false" | "unknown"
    confidence: float
    margin: float = 0.0


class IndexFormatError(ValueError):
    """An index file has a bad row; the message names the file, the row and the fix."""


class MisconceptionIndex:
    """False claims with corrections, matched to stated beliefs by embedding similarity."""

    def __init__(self, entries: Iterable[MisconceptionEntry] = (), encoder: Any = None,
                 min_similarity: float = 0.7, margin: float = 0.03) -> None:
        self.entries: list[MisconceptionEntry] = list(entries)
        self._encoder = encoder
        self.min_similarity = min_similarity
        self.margin = margin
        self._emb_claim = None
        self._emb_truth = None
        self._lock = threading.Lock()

    # ---- building
    @classmethod
    def default(cls, **kwargs: Any) -> "MisconceptionIndex":
        """The embedded index written for this project (guardrail/data/misconceptions.jsonl)."""
        return cls(load_jsonl_entries(DEFAULT_INDEX_FILE), **kwargs)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entries: Iterable[MisconceptionEntry]) -> int:
        new = list(entries)
        with self._lock:
            self.entries.extend(new)
            self._emb_claim = self._emb_truth = None
        return len(new)

    def add_truthfulqa(self, path: str | Path, limit: int | None = None) -> int:
        return self.add(load_truthfulqa(path, limit=limit))

    def add_mask(self, path: str | Path, limit: int | None = None) -> int:
        return self.add(load_mask(path, limit=limit))

    def add_jsonl(self, path: str | Path) -> int:
        return self.add(load_jsonl_entries(path))

    # ---- encoding
    @property
    def encoder(self) -> Any:
        """The shared encoder of the detectors (``detectors.encoder.get_encoder``: int8 ONNX, cached) when
        available, else the sentence-transformers model from ``detectors.models.load_encoder``."""
        if self._encoder is None:
            try:
                from detectors.encoder import get_encoder

                self._encoder = get_encoder()
            except ImportError:
                from detectors.models import load_encoder

                self._encoder = load_encoder()
        return self._encoder

    def _encode(self, texts: Sequence[str], cache: bool = True) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, 384), dtype="float32")
        enc = self.encoder
        if hasattr(enc, "encode") and hasattr(enc, "tokenize") and hasattr(enc, "backend"):  # detectors SharedEncoder
            return enc.encode(list(texts), use_cache=cache).vectors
        return enc.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                          batch_size=64, show_progress_bar=False)

    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        enc = self.encoder
        h.update(f"{type(enc).__name__}:{getattr(enc, 'backend', 'st')}:{getattr(enc, 'source', '')}".encode())
        for e in self.entries:
            h.update(e.claim.encode("utf-8", "replace") + b"\x00" + e.truth.encode("utf-8", "replace") + b"\x01")
        return h.hexdigest()[:20]

    def prepare(self) -> None:
        """Embed every entry once (cached on disk under $GUARDRAIL_HOME/index/ by content hash)."""
        if self._emb_claim is not None:
            return
        import numpy as np

        with self._lock:
            if self._emb_claim is not None:
                return
            cache = None
            try:
                from detectors.models import guardrail_home

                cache = guardrail_home() / "index" / f"{self._fingerprint()}.npz"
                if cache.is_file():
                    data = np.load(cache)
                    if data["claim"].shape[0] == len(self.entries):
                        self._emb_claim, self._emb_truth = data["claim"], data["truth"]
                        return
            except Exception:  # a corrupt cache is rebuilt below
                cache = cache if cache is not None else None
            claims = self._encode([e.claim for e in self.entries], cache=False)
            truths = self._encode([e.truth for e in self.entries], cache=False)
            self._emb_claim, self._emb_truth = claims, truths
            if cache is not None:
                try:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    tmp = cache.with_suffix(".tmp.npz")
                    np.savez(tmp, claim=claims, truth=truths)
                    tmp.replace(cache)
                except OSError:
                    pass

    # ---- lookup
    def lookup(self, claims: Sequence[str], polarities: Sequence[str] | None = None) -> list[Optional[IndexMatch]]:
        """For each claim, the matching entry and whether the claim is true or false, or None."""
        import numpy as np

        if not claims or not self.entries:
            return [None] * len(claims)
        self.prepare()
        polarities = list(polarities or ["affirms"] * len(claims))
        emb = self._encode(list(claims))
        sim_f = emb @ self._emb_claim.T
        sim_t = emb @ self._emb_truth.T
        out: list[Optional[IndexMatch]] = []
        for i, claim in enumerate(claims):
            best = np.maximum(sim_f[i], sim_t[i])
            j = int(best.argmax())
            f, t = float(sim_f[i, j]), float(sim_t[i, j])
            if max(f, t) < self.min_similarity:
                out.append(None)
                continue
            entry = self.entries[j]
            if abs(f - t) < self.margin:
                out.append(IndexMatch(entry=entry, similarity=max(f, t), truth="unknown", confidence=0.0, margin=abs(f - t)))
                continue
            side_text, truth = (entry.claim, "false") if f > t else (entry.truth, "true")
            flips = negation_parity(claim) != negation_parity(side_text)
            if polarities[i] == "denies" and not negation_parity(claim):
                flips = not flips  # a denial whose claim text lost its negation
            if flips:
                truth = "true" if truth == "false" else "false"
            confidence = min(1.0, max(f, t)) * min(1.0, 0.5 + 5 * abs(f - t))
            out.append(IndexMatch(entry=entry, similarity=max(f, t), truth=truth, confidence=round(confidence, 4),
                                  margin=abs(f - t)))
        return out


def load_jsonl_entries(path: str | Path) -> list[MisconceptionEntry]:
    """Entries from a JSONL file with fields id, topic, claim, truth, note (optional)."""
    path = Path(path)
    if not path.is_file():
        raise IndexFormatError(f"misconception file {path} does not exist.")
    entries = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entries.append(MisconceptionEntry(**json.loads(line)))
            except (json.JSONDecodeError, ValidationError, TypeError) as exc:
                raise IndexFormatError(
                    f"{path} line {n} is not a valid entry ({exc.__class__.__name__}): each line must be a JSON "
                    "object with id, claim and truth (topic, note optional)."
                ) from None
    return entries


def load_truthfulqa(path: str | Path, limit: int | None = None) -> list[MisconceptionEntry]:
    """Entries from a TruthfulQA CSV: the best incorrect answer (or the first incorrect one) is the
    false claim, the best answer the truth; the question prefixes both so that short answers match."""
    path = Path(path)
    entries = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"Question", "Best Answer", "Incorrect Answers"} - set(reader.fieldnames or [])
        if missing:
            raise IndexFormatError(f"{path} is not TruthfulQA format: missing columns {sorted(missing)}.")
        for n, row in enumerate(reader):
            if limit is not None and len(entries) >= limit:
                break
            wrong = (row.get("Best Incorrect Answer") or "").strip() or row["Incorrect Answers"].split(";")[0].strip()
            best = row["Best Answer"].strip()
            if not wrong or not best:
                continue
            entries.append(MisconceptionEntry(
                id=f"truthfulqa-{n}", topic=(row.get("Category") or "truthfulqa").lower(),
                claim=_as_sentence(wrong), truth=_as_sentence(best),
                note=None, source=f"truthfulqa:{path.name}",
            ))
    return entries


_PIVOT = re.compile(r"<pivotal>(.*?)</pivotal>", re.S)


def load_mask(path: str | Path, limit: int | None = None) -> list[MisconceptionEntry]:
    """Entries from a MASK CSV: the proposition's two pivotal readings; the ground truth is the truth."""
    path = Path(path)
    entries = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"proposition", "ground_truth"} - set(reader.fieldnames or [])
        if missing:
            raise IndexFormatError(f"{path} is not MASK format: missing columns {sorted(missing)}.")
        for n, row in enumerate(reader):
            if limit is not None and len(entries) >= limit:
                break
            prop, truth = row["proposition"], (row["ground_truth"] or "").strip()
            m = _PIVOT.search(prop or "")
            if not m or "/" not in m.group(1) or not truth:
                continue
            options = [prop[: m.start()] + opt.strip() + prop[m.end():] for opt in m.group(1).split("/", 1)]
            options = [" ".join(o.split()) for o in options]
            false = [o for o in options if norm_answer(o) != norm_answer(truth)]
            if len(false) != 1:
                continue
            entries.append(MisconceptionEntry(
                id=f"mask-{row.get('task_id') or n}", topic="mask", claim=false[0], truth=truth,
                source=f"mask:{path.name}",
            ))
    return entries


def _as_sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


# ------------------------------------------------------------------------------------- the model
Messages = list[dict[str, str]]


class ModelClient:
    """One interface over the three ways to give the guard a model: a callable(messages) -> str,
    an OpenAI-compatible base URL, or a local ``detectors.models.ChatModel``."""

    def __init__(self, model: Any, *, model_name: str | None = None, api_key: str | None = None,
                 timeout_s: float = 30.0) -> None:
        self.model = model
        self.model_name = model_name or "default"
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.kind = self._kind(model)
        self._http = None

    @staticmethod
    def _kind(model: Any) -> str:
        if isinstance(model, str):
            if not model.startswith(("http://", "https://")):
                raise TypeError(f"model string must be an http(s) base URL of an OpenAI-compatible server, got {model!r}.")
            return "url"
        if hasattr(model, "model") and hasattr(model, "tokenizer"):
            return "local"
        if callable(model):
            return "callable"
        raise TypeError(
            f"model must be a callable(messages) -> str, an OpenAI-compatible base URL, or a ChatModel, "
            f"got {type(model).__name__}."
        )

    @property
    def url(self) -> str:
        base = str(self.model).rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        if base.endswith("/v1"):
            return base + "/chat/completions"
        return base + "/v1/chat/completions"

    def complete(self, conversations: Sequence[Messages], max_new_tokens: int = 64) -> list[str]:
        """One reply per conversation (greedy for a local model; batched where the backend allows)."""
        if not conversations:
            return []
        if self.kind == "local":
            from detectors.generation import generate

            return generate(self.model, [list(c) for c in conversations], max_new_tokens=max_new_tokens)
        if self.kind == "callable":
            out = []
            for conv in conversations:
                reply = self.model(list(conv))
                if not isinstance(reply, str):
                    raise TypeError(f"the model callable must return a str, got {type(reply).__name__}.")
                out.append(reply)
            return out
        return [self._post(conv, max_new_tokens) for conv in conversations]

    def _post(self, conv: Messages, max_new_tokens: int) -> str:
        import httpx

        if self._http is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._http = httpx.Client(timeout=self.timeout_s, headers=headers)
        body = {"model": self.model_name, "messages": list(conv), "max_tokens": max_new_tokens,
                "temperature": 0, "stream": False}
        response = self._http.post(self.url, json=body)
        response.raise_for_status()
        try:
            return response.json()["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RuntimeError(f"model endpoint {self.url} returned a malformed completion ({exc!r}).") from None


# ------------------------------------------------------------------------------------- re-ask probe
def neutral_question(claim: str, question: str | None) -> tuple[Messages, bool]:
    """The question asked again without the emotional framing and without the user's belief.

    Returns the messages and whether it is a true/false probe of the bare claim (no question known).
    """
    system = "Answer factual questions accurately and briefly."
    if question and question.strip():
        return [{"role": "system", "content": system}, {"role": "user", "content": question.strip()}], False
    prompt = f"Is this statement true or false? \"{claim.strip()}\" Reply with True or False, then one short sentence why."
    return [{"role": "system", "content": system}, {"role": "user", "content": prompt}], True


_TF = re.compile(r"^\W*(true|false|yes|no|correct|incorrect)\b", re.I)


def parse_true_false(answer: str) -> Optional[bool]:
    m = _TF.match(answer or "")
    if not m:
        return None
    return m.group(1).lower() in ("true", "yes", "correct")
