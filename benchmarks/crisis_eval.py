"""The crisis flag on written messages: recall on crisis messages, false alarms on safe ones.

    python -m benchmarks.crisis_eval [--data FILE ...] [--out runs/bench/crisis_eval.json]

The default files are the two held-out sets (other writers, written blind; cards in
``benchmarks/data/heldout/README.md``): ``crisis.jsonl``, crisis messages and close look-alikes, and
``crisis_everyday.jsonl``, everyday chat (quiz questions, a sad sentence before an ordinary question,
medical vignettes, greetings) with crisis messages hidden in ordinary requests. Nothing in them chose the
head's weights or threshold. Recall is also
given for the messages no cue pattern catches, which only the head can find. A false alarm replaces the
whole answer with the crisis reply, so both rates matter.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HELDOUT = Path(__file__).resolve().parent / "data" / "heldout" / "crisis.jsonl"
EVERYDAY = HELDOUT.with_name("crisis_everyday.jsonl")


def evaluate(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from detectors.emotion import EmotionDetector

    detector = EmotionDetector()
    flagged = [s.crisis for s in detector.predict([r["text"] for r in rows])]
    crisis = [i for i, r in enumerate(rows) if r["crisis"]]
    safe = [i for i, r in enumerate(rows) if not r["crisis"]]
    no_cue = [i for i in crisis if not detector.crisis.pattern_hit(rows[i]["text"])]

    def share(part: list[int]) -> Optional[float]:
        return round(sum(flagged[i] for i in part) / len(part), 4) if part else None

    return {"rows": len(rows), "crisis": len(crisis), "safe": len(safe), "recall": share(crisis),
            "recall_without_a_cue_word": share(no_cue), "no_cue_rows": len(no_cue), "false_alarms": share(safe),
            "missed": [rows[i].get("id") for i in crisis if not flagged[i]],
            "false_alarm_ids": [rows[i].get("id") for i in safe if flagged[i]]}


def main(argv: Optional[list[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=[str(HELDOUT), str(EVERYDAY)],
                        help="JSONL files of rows with 'text' and 'crisis' (true/false); default: both held-out sets")
    parser.add_argument("--out", default="runs/bench/crisis_eval.json")
    args = parser.parse_args(argv)
    from training.crisis_head import load_rows

    try:
        data = {path: load_rows(Path(path)) for path in args.data}
    except ValueError as exc:
        parser.error(str(exc))
    report: dict[str, Any] = {}
    for path, rows in data.items():
        found = report[path] = evaluate(rows)
        print(f"{path}: recall {found['recall']} (n={found['crisis']}), without a cue word "
              f"{found['recall_without_a_cue_word']} (n={found['no_cue_rows']}), false alarms {found['false_alarms']} "
              f"(n={found['safe']})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
