"""Thread-safe tokenization for the encoders: truncation and padding are done here, per call.

A Hugging Face fast tokenizer keeps its truncation and padding settings as state on the shared Rust
object and rewrites that state at every call (``tokenizer(texts, truncation=True, max_length=256)``
first enables truncation, then encodes). The shared encoder (no truncation: it cuts and reports
itself) and the tuned emotion encoder (truncation at 256) used one cached tokenizer from two threads,
so one call's settings could land between the other's set-up and its encode: the tuned encoder got a
6,000-character message untruncated (1,652 tokens) and ONNX Runtime failed on MiniLM's 512
positions. ``TokenizerCore`` holds its own copy of the Rust tokenizer with truncation and padding off,
set once and never changed, and every limit is an argument; nothing is mutated after construction,
so any number of threads may share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from detectors import models


@dataclass
class Batch:
    """Padded model inputs for a batch, which texts were cut, and each row's character offsets."""

    feed: dict[str, np.ndarray]  # input_ids, attention_mask, token_type_ids: (n, width) int64
    truncated: list[bool]
    offsets: np.ndarray  # (n, width, 2): [start, end) of each token in its text; (0, 0) for special/pad


class TokenizerCore:
    """Encode texts with [CLS] ... [SEP], cut to ``max_tokens`` (the first ``max_tokens - 2`` word pieces)."""

    def __init__(self, hf_tokenizer: Any) -> None:
        from tokenizers import Tokenizer

        self._rust = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        self._rust.no_truncation()
        self._rust.no_padding()
        self.cls_id = int(hf_tokenizer.cls_token_id)
        self.sep_id = int(hf_tokenizer.sep_token_id)
        self.pad_id = int(hf_tokenizer.pad_token_id or 0)

    def pieces(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Word-piece ids and character offsets of each text, no special tokens, never cut."""
        encodings = self._rust.encode_batch(list(texts), add_special_tokens=False)
        return [(e.ids, e.offsets) for e in encodings]

    def batch(self, texts: Sequence[str], max_tokens: int) -> Batch:
        """Model inputs for ``texts``, each cut to ``max_tokens`` tokens with the cut reported."""
        rows, spans, truncated = [], [], []
        for ids, offsets in self.pieces(texts):
            cut = len(ids) > max_tokens - 2
            rows.append([self.cls_id] + ids[: max_tokens - 2] + [self.sep_id])
            spans.append([(0, 0)] + list(offsets[: max_tokens - 2]) + [(0, 0)])
            truncated.append(cut)
        width = max((len(r) for r in rows), default=0)
        input_ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        attention = np.zeros((len(rows), width), dtype=np.int64)
        offsets_arr = np.zeros((len(rows), width, 2), dtype=np.int64)
        for i, (row, span) in enumerate(zip(rows, spans)):
            input_ids[i, : len(row)], attention[i, : len(row)] = row, 1
            offsets_arr[i, : len(span)] = span
        feed = {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": np.zeros_like(input_ids)}
        return Batch(feed, truncated, offsets_arr)


def load_core(path: str | Path) -> TokenizerCore:
    """The process-wide ``TokenizerCore`` of a model folder (safe to share: it is never mutated)."""
    path = str(path)
    return models.cached_object(("tokenizer-core", path), lambda: TokenizerCore(models.load_tokenizer(path)))
