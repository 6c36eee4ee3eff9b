"""Held-out evaluation of the answer judge: κ against an independent writer's labels, on topics absent
from the judge's training data (``benchmarks/data/heldout/``, format in its FORMAT.md).

Reported: Cohen's κ of the benchmark label (correct / incorrect / refusal; hedged and neither count as
incorrect) overall and per task (targets: ≥ 0.80 overall, ≥ 0.70 per task), the 5-way confusion
matrix, every disagreement (id, gold, predicted, decisive sentence), stance accuracy on the held-out
conversations (truth known, and claim only), and the speed in answers/s beside one int8 encoder pass
over the same responses, with the CPU's vector flags; and κ on ``embedded_answers.jsonl``, real answers of
the embedded SmolLM2-135M labelled by hand (rambling, loops, third answers: the text the default
reproduction scores). Nothing here is used for training or tuning.

    python -m benchmarks.judge_eval [--data benchmarks/data/heldout] [--out judge_eval.json]
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from benchmarks.machine import cpu_flags

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "heldout"
KAPPA_OVERALL, KAPPA_TASK = 0.80, 0.70
STANCES = ("endorses", "corrects", "hedges", "ignores")


def find_heldout(folder: Optional[Path] = None) -> Optional[Path]:
    """The held-out folder: the argument, $GUARDRAIL_HELDOUT, or this checkout's."""
    candidates = [folder, Path(os.environ["GUARDRAIL_HELDOUT"]) if os.environ.get("GUARDRAIL_HELDOUT") else None,
                  DEFAULT_DATA]
    for c in candidates:
        if c is not None and (c / "answers.jsonl").is_file():
            return c
    return None


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def evaluate_answers(judge: Any, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    from benchmarks.judge_command import benchmark_label, item_from_row
    from benchmarks.onnx_work import counting_onnx_runs
    from detectors.judge import JUDGE_LABELS

    items = [item_from_row(r) for r in rows]
    started = time.perf_counter()
    with counting_onnx_runs() as runs:
        verdicts = judge.judge(items)
    seconds = time.perf_counter() - started
    gold = [r["label"] for r in rows]
    pred = [v.label for v in verdicts]
    g3, p3 = [benchmark_label(x) for x in gold], [benchmark_label(x) for x in pred]
    out: dict[str, Any] = {"n": len(rows), "kappa": float(cohen_kappa_score(g3, p3)),
                           "accuracy_bench": sum(a == b for a, b in zip(g3, p3)) / max(1, len(rows)),
                           "accuracy5": sum(a == b for a, b in zip(gold, pred)) / max(1, len(rows)), "per_task": {}}
    for task in sorted({r["task"] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r["task"] == task]
        a, b = [g3[i] for i in idx], [p3[i] for i in idx]
        out["per_task"][task] = {"n": len(idx), "kappa": float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else None,
                                 "accuracy_bench": sum(x == y for x, y in zip(a, b)) / len(idx)}
    out["confusion5"] = {"labels": list(JUDGE_LABELS), "rows_gold_cols_pred":
                         confusion_matrix(gold, pred, labels=list(JUDGE_LABELS)).tolist()}
    out["disagreements"] = [{"id": r["id"], "task": r["task"], "gold": g, "predicted": p, "decisive": v.decisive}
                            for r, g, p, v in zip(rows, gold, pred, verdicts) if benchmark_label(g) != benchmark_label(p)]
    out["judge_seconds"] = seconds
    out["judge_positions"] = sum(positions for _, positions in runs)
    out["truncated"] = sum(v.truncated for v in verdicts)
    return out


def evaluate_conversations(judge: Any, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stance accuracy through the guard's adapter: truth known (claim, draft, None, truth), claim only,
    and the user's whole message as the claim beside the truth (how the guard reads a refuted belief)."""
    rows = [r for r in rows if r.get("belief") and r.get("label") in STANCES]
    out: dict[str, Any] = {"n": len(rows)}
    for mode in ("truth_known", "claim_only", "whole_message"):
        pairs, gold = [], []
        for r in rows:
            if r.get("belief_true"):
                continue  # the guard's claim is false in its use; true beliefs are judged below
            truth = r.get("truth") if mode != "claim_only" else None
            pairs.append((r["user_message"] if mode == "whole_message" else r["belief"], r["draft"], None, truth))
            gold.append(r["label"])
        pred = [s.label for s in judge.stance(pairs)] if pairs else []
        out[mode] = {"n": len(gold), "accuracy": sum(a == b for a, b in zip(gold, pred)) / max(1, len(gold))}
    true_rows = [r for r in rows if r.get("belief_true")]
    if true_rows:
        from detectors.judge import JudgeItem

        back = {"correct": "endorses", "incorrect": "corrects", "hedged": "hedges", "neither": "ignores", "refusal": "ignores"}
        verdicts = judge.judge([JudgeItem(correct=r["belief"], response=r["draft"]) for r in true_rows])
        out["true_beliefs"] = {"n": len(true_rows), "accuracy": sum(back[v.label] == r["label"] for v, r in zip(verdicts, true_rows)) / len(true_rows)}
    return out


def encoder_pass(texts: Sequence[str]) -> tuple[float, int]:
    """One int8 pass of the shared encoder over the same responses (no cache), for the speed ratio:
    (seconds, token positions run)."""
    from benchmarks.onnx_work import counting_onnx_runs
    from detectors.encoder import SharedEncoder

    enc = SharedEncoder(backend="onnx")
    enc.encode(texts[:8], use_cache=False)  # warm up
    started = time.perf_counter()
    with counting_onnx_runs() as runs:
        enc.encode(texts, use_cache=False)
    return time.perf_counter() - started, sum(positions for _, positions in runs)


def evaluate(data: Optional[Path] = None, weights: Optional[Path] = None) -> dict[str, Any]:
    from detectors.judge import AnswerJudge

    folder = find_heldout(data)
    if folder is None:
        raise FileNotFoundError("no held-out answers.jsonl (benchmarks/data/heldout or --data)")
    judge = AnswerJudge(weights)
    answers = _read(folder / "answers.jsonl")
    judge.judge([{"correct": "a", "incorrect": "b", "response": "warm up"}])
    result: dict[str, Any] = {"data": str(folder), "answers": evaluate_answers(judge, answers),
                              "conversations": evaluate_conversations(judge, _read(folder / "conversations.jsonl"))}
    embedded = _read(folder / "embedded_answers.jsonl")
    if embedded:  # real answers of the embedded 135M model, labelled by hand: text no one here wrote
        result["embedded_answers"] = evaluate_answers(judge, embedded)
    enc_s, enc_positions = encoder_pass([r["response"] for r in answers])
    a = result["answers"]
    result["speed"] = {"answers_per_s": a["n"] / a["judge_seconds"], "encoder_pass_answers_per_s": a["n"] / enc_s,
                       "ratio_to_one_encoder_pass": a["judge_seconds"] / enc_s, "cpu_flags": cpu_flags(),
                       "cores": os.cpu_count(), "judge_positions": a["judge_positions"], "encoder_pass_positions": enc_positions,
                       "positions_ratio": a["judge_positions"] / max(1, enc_positions)}
    result["targets_met"] = {"overall": a["kappa"] >= KAPPA_OVERALL,
                             "per_task": all(t["kappa"] is not None and t["kappa"] >= KAPPA_TASK for t in a["per_task"].values())}
    return result


def print_report(r: dict[str, Any]) -> None:
    a, c, s = r["answers"], r["conversations"], r["speed"]
    print(f"held-out answers: n={a['n']}  kappa={a['kappa']:.3f} (target {KAPPA_OVERALL})  bench acc={a['accuracy_bench']:.3f}  5-way acc={a['accuracy5']:.3f}")
    for task, t in a["per_task"].items():
        k = "n/a" if t["kappa"] is None else f"{t['kappa']:.3f}"
        print(f"  {task:12s} n={t['n']:4d}  kappa={k} (target {KAPPA_TASK})  acc={t['accuracy_bench']:.3f}")
    labels = a["confusion5"]["labels"]
    print("confusion (rows gold, cols predicted): " + " ".join(f"{x[:7]:>8s}" for x in labels))
    for name, row in zip(labels, a["confusion5"]["rows_gold_cols_pred"]):
        print(f"  {name:9s}" + " ".join(f"{v:8d}" for v in row))
    print(f"disagreements ({len(a['disagreements'])}):")
    for d in a["disagreements"]:
        print(f"  {d['id']}  gold={d['gold']}  predicted={d['predicted']}  decisive={d['decisive']!r}")
    if "embedded_answers" in r:
        e = r["embedded_answers"]
        print(f"the embedded model's own answers (labelled by hand): n={e['n']}  kappa={e['kappa']:.3f}  "
              f"bench acc={e['accuracy_bench']:.3f}  5-way acc={e['accuracy5']:.3f}")
        for name, row in zip(labels, e["confusion5"]["rows_gold_cols_pred"]):
            print(f"  {name:9s}" + " ".join(f"{v:8d}" for v in row))
        print(f"  disagreements: {len(e['disagreements'])} (ids in --out)")
    if c["n"]:
        print(f"held-out conversations: n={c['n']}  stance acc truth known={c['truth_known']['accuracy']:.3f} "
              f"(n={c['truth_known']['n']})  claim only={c['claim_only']['accuracy']:.3f}  "
              f"whole message={c['whole_message']['accuracy']:.3f}"
              + (f"  true beliefs={c['true_beliefs']['accuracy']:.3f} (n={c['true_beliefs']['n']})" if "true_beliefs" in c else ""))
    else:
        print("held-out conversations: none yet")
    print(f"speed: {s['answers_per_s']:.1f} answers/s (one int8 encoder pass: {s['encoder_pass_answers_per_s']:.1f}/s, "
          f"ratio {s['ratio_to_one_encoder_pass']:.2f}x) on {s['cores']} cores, flags {s['cpu_flags']}")
    print(f"  token positions run: judge {s['judge_positions']}, one encoder pass {s['encoder_pass_positions']} "
          f"({s['positions_ratio']:.2f}x the work, padding included, on any machine)")


def main(argv: Optional[Sequence[str]] = None) -> None:
    import argparse

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description="Evaluate the answer judge on the held-out set.")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    result = evaluate(args.data, args.weights)
    print_report(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
