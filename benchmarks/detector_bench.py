"""Detector benchmark: quality on held-out public data, latency and throughput on this machine.

    .venv/bin/python -m benchmarks.detector_bench [--out FILE] [--full] [--skip-speed]

Prints and writes JSON with:
- emotion: sadness F1 / precision / recall / AUROC / ECE on the GoEmotions test split (label 'sadness')
  and on the CARER validation split, at the head's stored threshold and at 0.5;
- stance: accuracy and macro-F1 on e-SNLI test mapped to endorses/corrects/ignores, and on the held-out
  task data (TruthfulQA/TriviaQA/MASK, questions never seen in training) with endorses-vs-rest AUROC;
- speed: p50/p95 latency of one call per detector (a 30-word message; a claim and a 100-word draft),
  batched throughput, and before/after of the speed measures (torch fp32 vs int8 ONNX Runtime), with
  the accuracy of each backend on the same sample.
Timings depend on the machine's load; the JSON records the core count and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

TARGETS = {"goemotions_sadness_f1": 0.55, "carer_sadness_f1": 0.90, "esnli_accuracy": 0.85, "task_endorses_auroc": 0.95,
           "emotion_p50_ms": 10.0, "stance_p50_ms": 35.0, "emotion_batched_per_s": 300.0}
WORDS = ("today felt heavy and I could not focus on anything at work because my mind kept drifting back to "
         "the argument we had last night about money and the future and whether any of it matters").split()


def _percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"p50_ms": round(1000 * statistics.median(ordered), 2),
            "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2), "runs": len(ordered)}


def _time(call: Callable[[int], Any], runs: int, warmup: int = 3) -> dict[str, float]:
    for i in range(warmup):
        call(-1 - i)
    times = []
    for i in range(runs):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return _percentiles(times)


def message(i: int, words: int = 30) -> str:
    """A distinct ~30-word message per i, so the encoder's text cache never answers instead of the model."""
    rng = random.Random(i)
    return " ".join(rng.choice(WORDS) for _ in range(words - 1)) + f" {i}."


def draft(i: int, words: int = 100) -> str:
    rng = random.Random(10_000 + i)
    return "You're right that the capital is Sydney. " + " ".join(rng.choice(WORDS) for _ in range(words - 8)) + f" {i}."


def sadness_scores(detector: Any, texts: list[str]) -> np.ndarray:
    """``predict(texts)`` sadness without histories (every stage the guard uses, sentences included)."""
    return np.array([s.sadness for s in detector.predict(texts)])


def emotion_quality(detector: Any, limit: int | None) -> dict[str, Any]:
    from training.detector_emotion import load_carer, load_goemotions
    from training.detector_training import binary_metrics

    threshold = detector.head.sadness_threshold
    out: dict[str, Any] = {"threshold": threshold}
    g_texts, _, g_sad = load_goemotions("test")
    c_texts, c_y = load_carer("validation")
    for name, texts, y in (("goemotions_test", g_texts, g_sad), ("carer_validation", c_texts, c_y[:, 0])):
        idx = np.arange(len(texts))
        if limit and limit < len(idx):
            idx = np.sort(np.random.default_rng(0).choice(len(texts), limit, replace=False))
        p = sadness_scores(detector, [texts[i] for i in idx])
        out[name] = binary_metrics(y[idx], p, threshold)
        out[name + "_at_0.5"] = binary_metrics(y[idx], p, 0.5)
    return out


def stance_quality(detector: Any, limit: int | None) -> dict[str, Any]:
    from training.detector_training import stance_metrics
    from training.stance_data import build_task_data, load_nli

    out: dict[str, Any] = {}
    sets = {"esnli_test": load_nli("esnli_test"), "task_heldout": build_task_data()["test"]}
    for name, examples in sets.items():
        if limit and limit < len(examples):
            examples = random.Random(0).sample(examples, limit)
        from training.detector_stance import stance_probabilities

        probs = stance_probabilities(detector, examples)
        out[name] = stance_metrics([e.label for e in examples], probs)
        if name == "task_heldout":
            by_source: dict[str, list[int]] = {}
            for i, e in enumerate(examples):
                by_source.setdefault(e.source.split("/")[0], []).append(i)
            out[name]["by_source"] = {
                src: stance_metrics([examples[i].label for i in idx], probs[idx]) for src, idx in by_source.items()
            }
    return out


def speed(backend: str, runs: int) -> dict[str, Any]:
    from detectors.beliefs import extract_beliefs
    from detectors.emotion import EmotionDetector
    from detectors.stance import StanceDetector

    emotion = EmotionDetector(backend=backend)
    stance = StanceDetector(backend=backend)
    offset = 1_000_000 if backend == "torch" else 0
    out: dict[str, Any] = {"backend": backend}
    out["emotion_one_30_words"] = _time(lambda i: emotion.predict([message(offset + 500 + i)]), runs)
    out["stance_one_claim_100_word_draft"] = _time(
        lambda i: stance.predict([("The capital of Australia is Sydney.", draft(offset + i))]), runs)
    out["beliefs_one_message"] = _time(lambda i: extract_beliefs(message(i) + " I think the answer is Sydney."), runs)
    batch = [message(offset + 100_000 + i) for i in range(256)]
    start = time.perf_counter()
    emotion.predict(batch)
    out["emotion_batched_per_s"] = round(len(batch) / (time.perf_counter() - start), 1)
    fast = EmotionDetector(backend=backend, tuned=False)
    out["emotion_fast_one_30_words"] = _time(lambda i: fast.predict([message(offset + 700 + i)]), runs)
    batch = [message(offset + 300_000 + i) for i in range(256)]
    start = time.perf_counter()
    fast.predict(batch)
    out["emotion_fast_batched_per_s"] = round(len(batch) / (time.perf_counter() - start), 1)
    pairs = [("The capital of Australia is Sydney.", draft(offset + 200_000 + i, 40)) for i in range(64)]
    start = time.perf_counter()
    stance.predict(pairs, batch_size=32)
    out["stance_batched_40_word_drafts_per_s"] = round(len(pairs) / (time.perf_counter() - start), 1)
    return out


def backend_accuracy(backend: str, n: int) -> dict[str, Any]:
    """Quality of each backend on the same small sample (the accuracy side of before/after)."""
    from detectors.emotion import EmotionDetector
    from detectors.stance import StanceDetector

    return {"emotion": emotion_quality(EmotionDetector(backend=backend), n)["goemotions_test"],
            "stance": stance_quality(StanceDetector(backend=backend), n // 2)["esnli_test"]}


def run(full: bool = False, skip_speed: bool = False, runs: int = 40, limit: int = 2000,
        accuracy_sample: int = 600) -> dict[str, Any]:
    from detectors.emotion import EmotionDetector
    from detectors.stance import StanceDetector

    limit = None if full else limit
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_average": list(os.getloadavg()), "python": platform.python_version(),
                    "threads": os.environ.get("GUARDRAIL_THREADS", "default")},
        "sample_limit": limit, "targets": TARGETS,
    }
    started = time.perf_counter()
    report["emotion"] = emotion_quality(EmotionDetector(), None)  # the emotion sets are small: always full
    report["emotion_fast"] = emotion_quality(EmotionDetector(tuned=False), None)  # without the tuned encoder
    report["stance"] = stance_quality(StanceDetector(), limit)
    if not skip_speed:
        report["speed"] = {"onnx_int8": speed("onnx", runs), "torch_fp32": speed("torch", max(10, runs // 2))}
        report["backend_accuracy_sample"] = {b: backend_accuracy(b, accuracy_sample) for b in ("onnx", "torch")}
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["targets_met"] = targets_met(report)
    return report


def targets_met(report: dict[str, Any]) -> dict[str, Any]:
    met: dict[str, Any] = {
        "goemotions_sadness_f1": report["emotion"]["goemotions_test"]["f1"] >= TARGETS["goemotions_sadness_f1"],
        "carer_sadness_f1": report["emotion"]["carer_validation"]["f1"] >= TARGETS["carer_sadness_f1"],
        "esnli_accuracy": report["stance"]["esnli_test"]["accuracy"] >= TARGETS["esnli_accuracy"],
        "task_endorses_auroc": report["stance"]["task_heldout"]["endorses_auroc"] >= TARGETS["task_endorses_auroc"],
    }
    if "speed" in report:
        fast = report["speed"]["onnx_int8"]
        met["emotion_p50_ms"] = fast["emotion_one_30_words"]["p50_ms"] <= TARGETS["emotion_p50_ms"]
        met["stance_p50_ms"] = fast["stance_one_claim_100_word_draft"]["p50_ms"] <= TARGETS["stance_p50_ms"]
        met["emotion_batched_per_s"] = fast["emotion_batched_per_s"] >= TARGETS["emotion_batched_per_s"]
        met["emotion_batched_per_s_without_tuned_encoder"] = fast["emotion_fast_batched_per_s"] >= TARGETS["emotion_batched_per_s"]
    return met


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("detector_bench.json"), help="JSON file to write")
    parser.add_argument("--full", action="store_true", help="score all of e-SNLI test and the held-out task data")
    parser.add_argument("--skip-speed", action="store_true", help="quality only")
    parser.add_argument("--runs", type=int, default=40, help="timed calls per latency figure")
    parser.add_argument("--limit", type=int, default=2000, help="fixed-sample size per stance set (without --full)")
    parser.add_argument("--accuracy-sample", type=int, default=600,
                        help="texts per backend for the before/after accuracy comparison")
    args = parser.parse_args(argv)
    report = run(full=args.full, skip_speed=args.skip_speed, runs=args.runs, limit=args.limit,
                 accuracy_sample=args.accuracy_sample)
    text = json.dumps(report, indent=2)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
