"""The embedded misconception index: false claims people often hold, each with a parallel true
statement, matched to a stated belief by sentence-embedding similarity with the shared encoder.

Because each entry has both sides, a user who states the truth is matched to the truth side and is not
flagged. Extendable from JSONL, TruthfulQA- and MASK-format files. The truth source built on it lives in
``guardrail.truth``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from pydantic import BaseModel, ValidationError

from guardrail.reference import negation_parity, norm_answer

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_INDEX_FILE = DATA_DIR / "misconceptions.jsonl"


class MisconceptionEntry(BaseModel):
    """A false claim people often hold, with a parallel true statement and a short explanation."""

    id: str
    topic: str = "general"
    claim: str
    truth: str
    note: Optional[str] = None
    source: str = "embedded"
    phrasings: list[str] = []  # how people say or presuppose the claim in chat; matched like it, never shown

    def correction(self) -> str:
        return f"{self.truth} {self.note}".strip() if self.note else self.truth


class IndexMatch(BaseModel):
    """The nearest entry; ``truth`` is the embedding side's verdict ("unknown" when the two sides are
    too close to call: the index truth source then resolves the side)."""

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
        self._emb_phrasing = None  # every entry's phrasings, rows in entry order; _phrasing_owner: each row's entry
        self._phrasing_owner = None
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
            self._emb_claim = self._emb_truth = self._emb_phrasing = None
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
            for text in e.phrasings:
                h.update(text.encode("utf-8", "replace") + b"\x02")
        return h.hexdigest()[:20]

    def prepare(self) -> None:
        """Embed every entry once (cached on disk under $GUARDRAIL_HOME/index/ by content hash)."""
        if self._emb_claim is not None:
            return
        import numpy as np

        with self._lock:
            if self._emb_claim is not None:
                return
            self._phrasing_owner = np.array([j for j, e in enumerate(self.entries) for _ in e.phrasings], dtype=np.int64)
            cache = None
            try:
                from detectors.models import guardrail_home

                cache = guardrail_home() / "index" / f"{self._fingerprint()}.npz"
                if cache.is_file():
                    data = np.load(cache)
                    if data["claim"].shape[0] == len(self.entries) and "phrasing" in data:
                        self._emb_claim, self._emb_truth, self._emb_phrasing = data["claim"], data["truth"], data["phrasing"]
                        return
            except Exception:  # a corrupt cache is rebuilt below
                pass
            claims = self._encode([e.claim for e in self.entries], cache=False)
            truths = self._encode([e.truth for e in self.entries], cache=False)
            phrasings = self._encode([t for e in self.entries for t in e.phrasings], cache=False)
            self._emb_claim, self._emb_truth, self._emb_phrasing = claims, truths, phrasings
            if cache is not None:
                try:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    tmp = cache.with_suffix(".tmp.npz")
                    np.savez(tmp, claim=claims, truth=truths, phrasing=phrasings)
                    tmp.replace(cache)
                except OSError:
                    pass

    # ---- lookup
    def span_vectors(self, text: str, spans: Sequence[tuple[int, int]]) -> list[Any]:
        """Vectors of spans of ``text`` (its sentences) pooled from one pass over it, where the encoder
        can (the shared encoder); else None for each (``lookup`` then encodes the span's text alone)."""
        encoder = self.encoder
        if hasattr(encoder, "span_vectors"):
            return encoder.span_vectors(text, spans)
        return [None] * len(spans)

    def side_similarities(self, vectors: Any) -> tuple[Any, Any]:
        """Cosine similarity of unit ``vectors`` (rows) to every entry's false side (its claim or the nearest
        of its phrasings) and to its truth: two (rows x entries) arrays."""
        import numpy as np

        self.prepare()
        false = vectors @ self._emb_claim.T
        if len(self._phrasing_owner):
            np.maximum.at(false, (np.arange(len(vectors))[:, None], self._phrasing_owner[None, :]), vectors @ self._emb_phrasing.T)
        return false, vectors @ self._emb_truth.T

    def _false_text(self, j: int, vector: Any) -> str:
        """The text of entry ``j``'s false side nearest ``vector``: its claim or one of its phrasings (a
        phrasing may carry a negated claim without a negation: "the landings were staged")."""
        import numpy as np

        entry = self.entries[j]
        if not entry.phrasings:
            return entry.claim
        rows = np.flatnonzero(self._phrasing_owner == j)
        sims = np.concatenate([[float(vector @ self._emb_claim[j])], self._emb_phrasing[rows] @ vector])
        return ([entry.claim] + entry.phrasings)[int(sims.argmax())]

    def lookup(self, claims: Sequence[str], polarities: Sequence[str] | None = None,
               min_similarity: Optional[float] = None, vectors: Sequence[Any] | None = None) -> list[Optional[IndexMatch]]:
        """For each claim, the matching entry and whether the claim is true or false, or None (nothing at
        ``min_similarity``, default the index's own). ``vectors``: a claim's vector where already known
        (``span_vectors``), None where it is to be encoded."""
        import numpy as np

        if not claims or not self.entries:
            return [None] * len(claims)
        self.prepare()
        polarities = list(polarities or ["affirms"] * len(claims))
        known = list(vectors) if vectors is not None else [None] * len(claims)
        todo = [i for i, v in enumerate(known) if v is None]
        if todo:
            for i, v in zip(todo, self._encode([claims[i] for i in todo])):
                known[i] = v
        sim_f, sim_t = self.side_similarities(np.stack(known))
        out: list[Optional[IndexMatch]] = []
        for i, claim in enumerate(claims):
            best = np.maximum(sim_f[i], sim_t[i])
            j = int(best.argmax())
            f, t = float(sim_f[i, j]), float(sim_t[i, j])
            if max(f, t) < (self.min_similarity if min_similarity is None else min_similarity):
                out.append(None)
                continue
            entry = self.entries[j]
            if abs(f - t) < self.margin:
                out.append(IndexMatch(entry=entry, similarity=max(f, t), truth="unknown", confidence=0.0, margin=abs(f - t)))
                continue
            side_text, truth = (self._false_text(j, known[i]), "false") if f > t else (entry.truth, "true")
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
    """Entries from a JSONL file with fields id, topic, claim, truth, note and phrasings (optional)."""
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
                    "object with id, claim and truth (topic, note, phrasings optional)."
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


_PIVOT = re.compile(r"<pivotal>([^<]*)</pivotal>")


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
