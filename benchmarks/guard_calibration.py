"""Choose the guard's stance-dependent thresholds on dev data and store them with the answer judge's weights.

    python -m benchmarks.guard_calibration [--judge DIR] [--write]

The thresholds that turn the judge's scores into flags belong to the weights: a retrained judge reads on
another scale. They are chosen here, on dev data only, and written to the weights' ``config.json``
(``guard``), where every guard using those weights takes them (``Policy.calibrated``; a value set in the
policy still wins):
- ``risk_threshold``, and ``sad_risk_threshold`` = it - ``SAD_OFFSET``: on the training conversations' dev
  split (the rows whose belief ``training/judge.py:is_dev`` puts in the judge's dev split), each row's truth
  passed as reference;
- ``reference_true_min`` (how sure the judge must be that a reference passage agrees with the user's claim
  before the claim counts as true), on the same rows, at the chosen risk threshold;
- ``index_side_judge_min``: on the index dev set (``training/data/index_dev``), without a reference.
Each is chosen by the one-standard-error rule on Youden's J (share of sycophantic drafts flagged minus
share of other drafts flagged): of the grid values whose J is within one standard error of the best J,
the one with the fewest false flags, then the most drafts caught, then the higher value. The dev sets are
small (138 and 41 sycophantic rows), and J's best point moves by a grid step with noise alone: taken as it
came, it chose a sad-user threshold of 0.35 that revised a plain correction ("The capital of Australia is
actually Canberra", read at 0.61 correcting). No held-out file is read.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = ROOT / "training" / "data" / "judge"
INDEX_DEV = ROOT / "training" / "data" / "index_dev" / "conversations_ix1.jsonl"
RISK_GRID = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7)
SIDE_GRID = (0.5, 0.6, 0.7, 0.8, 0.9)
TRUE_GRID = (0.5, 0.6, 0.7, 0.8, 0.9)
SAD_OFFSET = 0.05  # the guard is this much stricter when the user is sad


def sad_threshold(risk: float) -> float:
    return round(max(0.0, risk - SAD_OFFSET), 4)


def dev_conversations(folder: Path = CONVERSATIONS) -> list[dict[str, Any]]:
    """The conversations whose belief is in the judge's dev split (never trained on)."""
    from benchmarks.guard_heldout import load_rows
    from training.judge import is_dev

    return [r for path in sorted(folder.glob("conversations_*.jsonl")) for r in load_rows(path)
            if is_dev("b:" + (r.get("belief") or "").strip().lower())]


def youden(p: dict[str, Any]) -> tuple[float, float]:
    """(catch rate - false-flag rate, its standard error from the two binomial shares)."""
    tpr, fpr = p["caught"] / max(1, p["sycophantic"]), p["false_flags"] / max(1, p["other"])
    se = (tpr * (1 - tpr) / max(1, p["sycophantic"]) + fpr * (1 - fpr) / max(1, p["other"])) ** 0.5
    return tpr - fpr, se


def choose(curve: Sequence[dict[str, Any]]) -> float:
    """One-standard-error rule: of the points whose J is within one standard error of the best J, the one
    with the fewest false flags (whichever way the threshold runs), then the most caught, then the higher
    threshold."""
    if not curve:
        raise ValueError("no points to choose from")
    best_j, se = max((youden(p) for p in curve), key=lambda js: js[0])
    near = [p for p in curve if youden(p)[0] >= best_j - se - 1e-12]
    return min(near, key=lambda p: (p["false_flags"], -p["caught"], -p["threshold"]))["threshold"]


def point(guard: Any, rows: list[dict[str, Any]], threshold: float, *, with_reference: bool) -> dict[str, Any]:
    from benchmarks.guard_heldout import evaluate, rates

    r = rates(rows, evaluate(guard, rows, with_reference=with_reference))
    return {"threshold": threshold, "caught": r["sycophantic"]["flagged"], "sycophantic": r["sycophantic"]["n"],
            "false_flags": r["other"]["flagged"], "other": r["other"]["n"]}


def calibrate(judge_dir: Optional[Path] = None, risk_grid: Sequence[float] = RISK_GRID,
              side_grid: Sequence[float] = SIDE_GRID, true_grid: Sequence[float] = TRUE_GRID,
              progress: bool = True) -> dict[str, Any]:
    """Sweep the thresholds on dev in turn; returns the chosen values and the curves they were chosen on."""
    from benchmarks.guard_heldout import load_rows
    from benchmarks.runner import EVALUATION_TIMEOUT_MS
    from detectors.judge import DEFAULT_PATH, AnswerJudge, adapter_digest
    from detectors.models import forget_cached_objects
    from guardrail import Guard, Policy
    from guardrail.policy import UNCALIBRATED
    from guardrail.guard import Detectors

    folder = Path(judge_dir) if judge_dir is not None else DEFAULT_PATH
    conversations, index_rows = dev_conversations(), load_rows(INDEX_DEV)

    def guard(**thresholds: float) -> Any:
        """A guard in a fresh process's state: cached encoder reads would make each point depend on the last.
        A threshold not yet chosen keeps its uncalibrated value, never the one a former calibration wrote to
        the weights, so running the calibration again gives the same result."""
        forget_cached_objects()
        return Guard(detectors=Detectors(stance=AnswerJudge(folder)),
                     policy=Policy(timeout_ms=EVALUATION_TIMEOUT_MS, **{**UNCALIBRATED, **thresholds}))

    def sweep(name: str, grid: Sequence[float], rows: list[dict[str, Any]], with_reference: bool,
              **fixed: float) -> list[dict[str, Any]]:
        curve = []
        for t in grid:
            values = {name: t, **({"sad_risk_threshold": sad_threshold(t)} if name == "risk_threshold" else {})}
            curve.append(point(guard(**fixed, **values), rows, t, with_reference=with_reference))
            if progress:
                print(f"{name} {t}: {curve[-1]}", flush=True)
        return curve

    risk_curve = sweep("risk_threshold", risk_grid, conversations, True)
    risk = choose(risk_curve)
    chosen = {"risk_threshold": risk, "sad_risk_threshold": sad_threshold(risk)}
    true_curve = sweep("reference_true_min", true_grid, conversations, True, **chosen)
    chosen["reference_true_min"] = choose(true_curve)
    side_curve = sweep("index_side_judge_min", side_grid, index_rows, False, **chosen)
    chosen["index_side_judge_min"] = choose(side_curve)
    dev = f"training conversations' dev split ({len(conversations)} rows), truth as reference"
    return {"thresholds": chosen, "adapter_sha1": adapter_digest(folder),
            "rule": "one-standard-error rule on Youden's J (catch rate - false-flag rate): of the points within one "
                    "SE of the best J, the fewest false flags, then the most caught, then the higher threshold; "
                    f"sad = risk - {SAD_OFFSET}",
            "risk_curve": {"data": dev, "points": risk_curve},
            "true_curve": {"data": dev + ", at the chosen risk threshold", "points": true_curve},
            "side_curve": {"data": f"index dev set ({len(index_rows)} rows), no reference", "points": side_curve}}


def write(folder: Path, calibration: dict[str, Any]) -> Path:
    from detectors.judge import CONFIG_FILE, GUARD_KEY

    path = folder / CONFIG_FILE
    config = json.loads(path.read_text())
    config[GUARD_KEY] = calibration
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description="Choose the guard's risk, reference-passage and index-side thresholds for a set of "
                                     "answer-judge weights on dev data (a few minutes on 2 cores), and with --write "
                                     "store them in the weights' config.json, where every guard takes them.")
    parser.add_argument("--judge", type=Path, default=None, help="judge weights folder (default: the shipped one)")
    parser.add_argument("--write", action="store_true", help="store the chosen thresholds in the folder's config.json")
    args = parser.parse_args(argv)
    from detectors.judge import DEFAULT_PATH

    result = calibrate(args.judge)
    print(json.dumps(result["thresholds"]))
    if args.write:
        print(f"written to {write(args.judge or DEFAULT_PATH, result)}")
    return result


if __name__ == "__main__":
    main()
