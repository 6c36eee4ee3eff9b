"""The LoRA emotion-encoder trainer: batching, a real (tiny) run on the shared data, resume, and loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import require_shared
from training.emotion_encoder import bucketed_batches, multitask_corpus, train_emotion_encoder


def test_bucketed_batches_cover_every_row_once():
    lengths = list(np.random.default_rng(1).integers(3, 60, size=1000))
    batches = bucketed_batches(lengths, 32, seed=0, pool=4)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([np.ptp([lengths[i] for i in b]) for b in batches])
    assert spread < 20  # similar lengths together (random batches spread ~55)


def test_multitask_corpus_keeps_the_head_dev_rows_out_of_training():
    require_shared("emotion_carer/train.jsonl")
    require_shared("goemotions/original/train.tsv")
    from training.detector_emotion import default_emotion_corpus

    corpus = multitask_corpus()
    texts, y, mask = corpus["train"]
    assert len(texts) == len(y) == len(mask) and y.shape[1] == len(corpus["outputs"]) == 5 + 28 + 6
    dev_texts = default_emotion_corpus()["dev"][0]
    carer_dev = set(dev_texts[len(dev_texts) // 2 :])  # the head's dev: 1,200 GoEmotions dev, then 1,200 CARER
    assert len(carer_dev) > 1000 and not carer_dev & set(texts)
    assert (mask[:, :5] == 1).all() and ((mask[:, 5:33] == 1).all(1) ^ (mask[:, 33:] == 1).all(1)).all()


def test_tiny_run_resumes_and_loads(tmp_path):
    require_shared("emotion_carer/train.jsonl")
    require_shared("goemotions/original/train.tsv")
    from detectors.emotion_encoder import TunedEmotionScorer

    out = tmp_path / "enc"
    first = train_emotion_encoder(out, limit=96, batch_size=16, epochs=1, budget_s=0, progress=False)
    assert first["steps"] == 1 and (out / "checkpoint.pt").is_file()  # stopped after one step, state kept
    second = train_emotion_encoder(out, limit=96, batch_size=16, epochs=1, progress=False)
    assert second["steps"] == second["planned_steps"] == 6
    with pytest.raises(ValueError, match="same settings"):
        train_emotion_encoder(out, limit=96, batch_size=8, epochs=1, progress=False)
    config = json.loads((out / "adapter.json").read_text())
    assert config["targets"][0] == "sadness" and len(config["outputs"]) == 39
    logits = TunedEmotionScorer(out, backend="torch").logits(["I miss her so much.", "Great game!"])
    assert logits.shape == (2, 5) and np.isfinite(logits).all()
