"""Latency and throughput of ``guard.check`` (no re-ask probe), on this machine's CPUs.

    python -m benchmarks.guard_bench [--n 200] [--out runs/bench/guard_bench.json]

Figures: p50/p99 of one check with a 60-word user message and a 100-word draft, when the user states
no belief (no stance work at all), when one belief is stated, and when one is stated and the caller passes
a reference passage (the passage is encoded, and the message sentence nearest it read too unless the belief
covers it); per-stage medians; ``check_batch`` throughput with beliefs; and the emotion stage over many
messages at once, against one encoder pass. Each check's p50 is also given as a ratio to the encoder work it
cannot avoid, measured in the same run: one int8 pass over the message (a check with no belief reads only
the message); one over the message plus one over the draft (a check with a belief reads the draft too).
Beside them, a figure no machine moves: the encoder work one check runs, in token positions times layers,
against the same unit (``encoder_work``): what the wall-clock ratio comes to once every other cost is gone.
Targets from the issue: p50 <= 15 ms (no belief), p50 <= 45 ms and p99 <= 100 ms (one belief),
check_batch >= 100 checks/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# 60 words each; the second states one belief.
USER_NO_BELIEF = (
    "I have been feeling really low for the past few weeks, ever since my grandmother passed away in the spring. "
    "Most evenings I sit at the kitchen table and cannot focus on anything at all. Could you suggest a few gentle "
    "things I could do in the evenings to feel a little calmer and less alone as I grieve her?"
)
USER_ONE_BELIEF = (
    "I have been feeling really low for the past few weeks, ever since my grandmother passed away in the spring. "
    "She loved geography quizzes and we used to play them together every Sunday. What is the capital of Australia? "
    "I am pretty sure it is Sydney, she always said so, and I really want to get it right now today."
)
DRAFT = (
    "I am so sorry for the loss of your grandmother. Grief can make ordinary evenings feel long and heavy, and it is "
    "completely understandable that you find it hard to focus right now. You are right that Sydney is the capital of "
    "Australia, and it is lovely that you shared quizzes like that with her. Some people find it helps to keep a small "
    "ritual going, like a weekly quiz in her honour, a short walk after dinner, or writing down one memory of her each "
    "night. Be gentle with yourself, and reach out to friends when evenings feel quiet."
)
REFERENCE = {"context": "Canberra is the capital of Australia; Sydney is its largest city."}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def clear_encoder_cache() -> None:
    try:
        from detectors.emotion import EmotionDetector
        from detectors.encoder import get_encoder

        for owner in (get_encoder(), EmotionDetector().head.tuned()):
            for name in ("_cache", "_states_cache", "_token_cache"):
                cache = getattr(owner, name, None)
                if cache is not None:
                    cache.clear()
    except ImportError:
        pass


def time_checks(guard, user: str, draft: str, n: int, reference: dict | None = None) -> dict:
    for _ in range(10):
        guard.check(user, draft, reference=reference)
    totals, stages = [], {}
    for _ in range(n):
        clear_encoder_cache()  # every check pays for its own encoding, as a new user's message would
        t = time.perf_counter()
        v = guard.check(user, draft, reference=reference)
        totals.append((time.perf_counter() - t) * 1000)
        for stage, ms in v.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    return {
        "n": n, "p50_ms": round(percentile(totals, 50), 2), "p99_ms": round(percentile(totals, 99), 2),
        "mean_ms": round(statistics.fmean(totals), 2), "beliefs": len(v.beliefs), "action": v.action,
        "stage_p50_ms": {k: round(statistics.median(x), 2) for k, x in stages.items()},
    }


def time_encoder_pass(text: str, n: int) -> float:
    """p50 ms of one int8 encoder pass of the shared encoder over ``text`` (no cache): the unit the
    check's cost is read against, measured in the same run."""
    from detectors.encoder import get_encoder

    encoder = get_encoder()
    for _ in range(5):
        encoder.encode([text], use_cache=False)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        encoder.encode([text], use_cache=False)
        times.append((time.perf_counter() - t) * 1000)
    return percentile(times, 50)


def encoder_work(guard, user: str, draft: str, reference: dict | None = None) -> dict:
    """The transformer work of one uncached check: per ONNX graph, the token positions it ran times the
    layers it runs them through (the emotion stage's split graph runs the shared encoder's six and its own
    tuned top layers again), beside one pass of the shared encoder over the message and over the draft.
    Machine-independent, unlike the wall-clock ratios, which it explains."""
    from benchmarks.onnx_work import by_graph, counting_onnx_runs
    from detectors import models
    from detectors.emotion import EmotionDetector
    from detectors.emotion_encoder import tuned_layers
    from detectors.encoder import get_encoder

    layers = int(json.loads((Path(models.encoder_path(None)) / "config.json").read_text())["num_hidden_layers"])
    tuned = EmotionDetector().head.tuned()
    split = layers + len(tuned_layers(tuned.folder) or []) if tuned is not None and tuned.split else layers
    clear_encoder_cache()
    with counting_onnx_runs() as runs:
        guard.check(user, draft, reference=reference)
    graphs = by_graph(runs, {"emotion-split": split}, layers)
    tokenizer = get_encoder().tokenizer
    tokens = [len(tokenizer(text)["input_ids"]) for text in (user, draft)]
    unit = {"message": tokens[0] * layers, "message_and_draft": sum(tokens) * layers}
    total = sum(g["layer_positions"] for g in graphs.values())
    return {"graphs": graphs, "layer_positions": total, "unit_layer_positions": unit,
            "ratio_to_message_pass": round(total / unit["message"], 2),
            "ratio_to_message_and_draft_passes": round(total / unit["message_and_draft"], 2)}


def time_emotion_batch(n: int) -> tuple[float, float]:
    """(messages/s of the emotion detector over ``n`` new messages at once, messages/s of one int8 encoder
    pass over ``n`` others): the work the emotion stage does per message, batched, in encoder passes."""
    from detectors.emotion import EmotionDetector
    from detectors.encoder import get_encoder

    detector, encoder = EmotionDetector(), get_encoder()
    mine = [f"{USER_NO_BELIEF} (message {i})" for i in range(n)]
    others = [f"{USER_ONE_BELIEF} (message {i})" for i in range(n)]
    detector.predict([f"{USER_NO_BELIEF} (warm-up {i})" for i in range(8)])  # not one of the timed messages
    t = time.perf_counter()
    detector.predict(mine)
    emotion = n / (time.perf_counter() - t)
    t = time.perf_counter()
    encoder.encode(others, use_cache=False)
    return emotion, n / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="checks per case")
    parser.add_argument("--batch", type=int, default=256, help="items in the check_batch run")
    parser.add_argument("--batch-size", type=int, default=32, help="items per check_batch call")
    parser.add_argument("--out", default="runs/bench/guard_bench.json")
    args = parser.parse_args(argv)

    from guardrail import Guard

    guard = Guard().warmup()
    assert len(USER_NO_BELIEF.split()) == 60 and len(USER_ONE_BELIEF.split()) == 60, "messages must be 60 words"
    no_belief = time_checks(guard, USER_NO_BELIEF, DRAFT, args.n)
    one_belief = time_checks(guard, USER_ONE_BELIEF, DRAFT, args.n)
    with_reference = time_checks(guard, USER_ONE_BELIEF, DRAFT, args.n, reference=REFERENCE)
    items = [(USER_ONE_BELIEF.replace("Sunday", f"Sunday {i}"), DRAFT) for i in range(args.batch)]
    guard.check_batch(items[: args.batch_size])
    clear_encoder_cache()
    t = time.perf_counter()
    for start in range(0, len(items), args.batch_size):
        guard.check_batch(items[start : start + args.batch_size])
    throughput = len(items) / (time.perf_counter() - t)
    from benchmarks.machine import cpu_flags

    unit = time_encoder_pass(USER_ONE_BELIEF, args.n)
    # A check with a belief must read the draft too: its unit is one pass over each of the two texts.
    both = unit + time_encoder_pass(DRAFT, args.n)
    emotion_rate, pass_rate = time_emotion_batch(args.batch)
    work = {"no_belief": encoder_work(guard, USER_NO_BELIEF, DRAFT), "one_belief": encoder_work(guard, USER_ONE_BELIEF, DRAFT)}
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_avg": os.getloadavg(), "cpu_flags": cpu_flags()},
        "encoder_pass_p50_ms": round(unit, 2),
        "ratio_to_encoder_pass": {"no_belief": round(no_belief["p50_ms"] / unit, 2),
                                  "one_belief": round(one_belief["p50_ms"] / unit, 2),
                                  "one_belief_reference": round(with_reference["p50_ms"] / unit, 2)},
        "message_and_draft_passes_p50_ms": round(both, 2),
        "ratio_to_message_and_draft_passes": {"one_belief": round(one_belief["p50_ms"] / both, 2),
                                              "one_belief_reference": round(with_reference["p50_ms"] / both, 2)},
        "words": {"user": 60, "draft": len(DRAFT.split())},
        "no_belief": no_belief, "one_belief": one_belief, "one_belief_reference": with_reference,
        "encoder_work": work,
        "check_batch": {"items": len(items), "batch_size": args.batch_size, "checks_per_s": round(throughput, 1)},
        "emotion_batch": {"messages": args.batch, "messages_per_s": round(emotion_rate, 1),
                          "encoder_pass_messages_per_s": round(pass_rate, 1),
                          "ratio_to_encoder_pass": round(pass_rate / emotion_rate, 2)},
        "targets": {"no_belief_p50_ms": 15, "one_belief_p50_ms": 45, "one_belief_p99_ms": 100, "checks_per_s": 100},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"CPU flags: {cpu_flags()}; one int8 encoder pass over the 60-word message: p50 {unit:.1f} ms; "
          f"one over the message plus one over the {len(DRAFT.split())}-word draft: {both:.1f} ms")
    print(f"guard.check, no belief : p50 {no_belief['p50_ms']:.1f} ms  p99 {no_belief['p99_ms']:.1f} ms  "
          f"({no_belief['p50_ms'] / unit:.2f}x one encoder pass; target p50 <= 15)")
    print(f"guard.check, one belief: p50 {one_belief['p50_ms']:.1f} ms  p99 {one_belief['p99_ms']:.1f} ms  "
          f"({one_belief['p50_ms'] / unit:.2f}x one encoder pass, {one_belief['p50_ms'] / both:.2f}x the passes over "
          f"message and draft; targets p50 <= 45, p99 <= 100)")
    print(f"  stages (p50 ms), one belief: {one_belief['stage_p50_ms']}")
    print(f"guard.check, one belief, reference passage: p50 {with_reference['p50_ms']:.1f} ms  p99 "
          f"{with_reference['p99_ms']:.1f} ms  ({with_reference['p50_ms'] / unit:.2f}x one encoder pass, "
          f"{with_reference['p50_ms'] / both:.2f}x the passes over message and draft; "
          f"{with_reference['beliefs']} belief(s) read)")
    for case, w in work.items():
        parts = ", ".join(f"{k} {g['positions']} positions in {g['runs']} run(s)" for k, g in w["graphs"].items())
        ratio = (f"{w['ratio_to_message_pass']:.2f}x one pass over the message" if case == "no_belief" else
                 f"{w['ratio_to_message_and_draft_passes']:.2f}x one pass over message and draft")
        print(f"encoder work, {case.replace('_', ' ')}: {w['layer_positions']} token-layers ({parts}): {ratio}, "
              f"what the wall-clock ratio comes to once every other cost is gone")
    print(f"check_batch with beliefs: {throughput:.0f} checks/s  (target >= 100)")
    print(f"emotion, {args.batch} messages at once: {emotion_rate:.0f}/s  ({pass_rate / emotion_rate:.2f}x one encoder "
          f"pass over as many messages, {pass_rate:.0f}/s)")
    print(f"load average during run: {os.getloadavg()[0]:.2f}; written {out}")
    return result


if __name__ == "__main__":
    main()
