"""Shared-encoder features for detector training, cached on disk in chunks so a crash resumes.

Features are computed with the same encoder backend the detectors use at run time (int8 ONNX by
default), so a head is trained on exactly the vectors it will see.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from detectors import models
from detectors.encoder import get_encoder

CHUNK = 2048


def features_dir() -> Path:
    return models.guardrail_home() / "features"


def _key(texts: Sequence[str], backend: str) -> str:
    digest = hashlib.sha1(backend.encode())
    for text in texts:
        digest.update(text.encode("utf-8", "replace"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


def embed_texts(texts: Sequence[str], *, label: str = "texts", backend: str | None = None, progress: bool = True) -> np.ndarray:
    """Unit-length encoder vectors for ``texts`` (n, 384), from the on-disk cache where present."""
    encoder = get_encoder(backend=backend)
    texts = list(texts)
    folder = features_dir() / _key(texts, encoder.backend)
    folder.mkdir(parents=True, exist_ok=True)
    chunks = range(0, len(texts), CHUNK)
    parts = []
    bar = None
    if progress:
        from rich.progress import Progress

        bar = Progress(transient=True)
        bar.start()
        task = bar.add_task(f"encoding {label}", total=len(texts))
    try:
        for start in chunks:
            path = folder / f"{start:08d}.npy"
            if path.is_file():
                part = np.load(path)
            else:
                part = encoder.encode(texts[start : start + CHUNK], batch_size=64, use_cache=False).vectors
                tmp = path.with_suffix(".tmp.npy")
                np.save(tmp, part)
                tmp.replace(path)
            parts.append(part)
            if bar is not None:
                bar.advance(task, len(part))
    finally:
        if bar is not None:
            bar.stop()
    return np.concatenate(parts) if parts else np.zeros((0, encoder.dim), dtype=np.float32)
