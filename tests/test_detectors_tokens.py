"""Tokenization shared across threads (issue 11): the first long check in a fresh process must not crash.

The guard runs the shared encoder and the tuned emotion encoder in two threads. They used one cached
Hugging Face tokenizer whose truncation setting is state rewritten at every call, so one thread's
"no truncation" could land between the other's "truncate at 256" and its encode: a 1,652-token input
reached ONNX Runtime ("broadcast ... 512 by 1652") and the draft passed unchecked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

from detectors import models
from detectors.tokens import load_core

ROOT = Path(__file__).resolve().parents[1]
LONG = "I think the answer is Sydney and I am sad. " * 150  # 6,450 characters, 1,652 tokens


def test_core_matches_the_hf_tokenizer_with_truncation():
    path = models.encoder_path(None)
    hf = models.load_tokenizer(path)
    texts = [LONG, "short one", "", "Héllo wörld!! 😀 ok"]
    expected = hf(texts, truncation=True, max_length=256, padding=True, return_offsets_mapping=True, return_tensors="np")
    batch = load_core(path).batch(texts, 256)
    assert np.array_equal(batch.feed["input_ids"], expected["input_ids"])
    assert np.array_equal(batch.feed["attention_mask"], expected["attention_mask"])
    assert np.array_equal(batch.offsets, expected["offset_mapping"])
    assert batch.truncated == [True, False, False, False]


def test_core_cuts_while_another_thread_rewrites_the_hf_tokenizer_settings():
    path = models.encoder_path(None)
    hf, core = models.load_tokenizer(path), load_core(path)
    widths: list[int] = []
    stop = threading.Event()

    def rewrite() -> None:  # what the shared encoder's old path did on every call
        while not stop.is_set():
            hf([LONG], add_special_tokens=True, truncation=False)

    thread = threading.Thread(target=rewrite)
    thread.start()
    try:
        for _ in range(100):
            widths.append(core.batch([LONG], 256).feed["input_ids"].shape[1])
    finally:
        stop.set()
        thread.join()
    assert set(widths) == {256}


def test_first_long_check_in_a_fresh_process_is_checked():
    code = (
        "from guardrail.guard import Guard\n"
        f"v = Guard().check({LONG!r}, 'The capital of Australia is Sydney.')\n"
        "print('STATUS', v.status, v.error)\n"
        "assert v.status == 'ok', v.error\n"
        "assert v.emotion is not None and v.emotion.truncated\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
