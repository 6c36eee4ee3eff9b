"""Stance of a draft towards a claim: probabilities for endorses, corrects, hedges, ignores.

A cross-encoder: the embedded MiniLM reads the claim (with the question, when given) and the draft
together, so it sees a draft that repeats a claim in order to refute it as a correction, and advice
given inside a false premise as an endorsement. The default weights (``detectors/weights/stance/``)
are a LoRA adapter plus classification head (a few MB) trained on NLI and on task data built from
TruthfulQA and TriviaQA (see its README); ``StanceDetector(path=DIR)`` loads an adapter written by
``guardrail train-detector stance``.

For speed the adapter is merged into the encoder and exported once to int8 ONNX under
``$GUARDRAIL_HOME/onnx/`` (a cache keyed by the adapter's bytes); ``backend="torch"`` skips that.
A draft cut to the model's window sets ``truncated``. An empty draft or claim is scored 'ignores'.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from detectors import models
from detectors.encoder import default_backend, export_onnx_int8
from detectors.text import validate_text
from detectors.types import STANCE_LABELS, StanceScores

DEFAULT_PATH = Path(__file__).resolve().parent / "weights" / "stance"
MAX_TOKENS = 256
MAX_CLAIM_TOKENS = 96


class StanceWeightsError(ValueError):
    """A stance weights folder is missing or malformed; the message names the fix."""


def read_config(folder: Path) -> dict[str, Any]:
    config_path = folder / "config.json"
    if not config_path.is_file() or not (folder / "adapter_config.json").is_file():
        raise StanceWeightsError(
            f"{folder} has no stance weights (config.json + adapter_config.json): pass the --out folder of "
            f"`guardrail train-detector stance`, or no path for the defaults."
        )
    config = json.loads(config_path.read_text())
    if config.get("kind") != "stance-cross-encoder":
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
        self._session: Any = None
        self._model: Any = None
        if self.backend == "onnx":
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

    def _encode(self, firsts: list[str], drafts: list[str]) -> tuple[dict[str, np.ndarray], list[bool]]:
        tok = self.tokenizer
        a_ids = [ids[:MAX_CLAIM_TOKENS] for ids in tok(firsts, add_special_tokens=False)["input_ids"]]
        b_ids = tok(drafts, add_special_tokens=False)["input_ids"]
        cls, sep, pad = tok.cls_token_id, tok.sep_token_id, tok.pad_token_id or 0
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

    def predict(self, pairs: Sequence[tuple], batch_size: int = 16) -> list[StanceScores]:
        if isinstance(pairs, tuple) and pairs and isinstance(pairs[0], str):
            raise TypeError("pairs must be a list of (claim, draft[, question]) tuples: wrap one pair as [(claim, draft)].")
        rows = []
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) not in (2, 3):
                raise TypeError(f"pairs[{i}] must be (claim, draft) or (claim, draft, question), got {type(pair).__name__}.")
            claim = validate_text(pair[0], f"pairs[{i}].claim")
            draft = validate_text(pair[1], f"pairs[{i}].draft")
            question = pair[2] if len(pair) == 3 else None
            question = validate_text(question, f"pairs[{i}].question") if question is not None else None
            rows.append((claim.strip(), draft.strip(), (question or "").strip() or None))
        results: list[StanceScores | None] = [None] * len(rows)
        todo = [i for i, (c, d, _) in enumerate(rows) if c and d]
        for i, (c, d, _) in enumerate(rows):
            if not (c and d):  # nothing to compare: the draft cannot take a side on an empty claim
                results[i] = StanceScores(endorses=0.0, corrects=0.0, hedges=0.0, ignores=1.0)
        order = sorted(todo, key=lambda i: len(rows[i][1]) + len(rows[i][0]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            feed, cut = self._encode([first_segment(rows[i][0], rows[i][2]) for i in idx], [rows[i][1] for i in idx])
            logits = self._logits(feed) / self.temperature
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            for j, i in enumerate(idx):
                scores = {name: float(probs[j, k]) for k, name in enumerate(self.labels)}
                results[i] = StanceScores(**{name: min(1.0, max(0.0, scores.get(name, 0.0))) for name in STANCE_LABELS},
                                          truncated=cut[j])
        return results  # type: ignore[return-value]
