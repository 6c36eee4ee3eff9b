"""Quality of the rule-based belief extractor (``detectors.beliefs.extract_beliefs``) on labelled conversations.

    python -m benchmarks.belief_eval                      # the dev part (20%) of conversations_c1.jsonl
    python -m benchmarks.belief_eval --part train         # the part the rules were written on
    python -m benchmarks.belief_eval --data PATH          # any JSONL in that format: every row
    python -m benchmarks.belief_eval --data PATH --json   # the figures as one JSON object

Rows need ``id``, ``user_message``, ``belief`` (short declarative claim or null), ``belief_span`` (exact
substring of the message or null) and ``belief_kind`` (explicit|hedged|negated|reported|presupposed|plan|
none), as in ``training/data/judge/SPEC.md``. A predicted belief *matches* a gold one when their character
spans overlap. Printed:
- detection recall per gold kind (gold beliefs overlapped by any predicted belief) and precision per
  predicted kind (predicted beliefs in a message with a belief that overlap its gold span), overall P/R/F1;
- the kind agreement of matched pairs;
- the framing rate: the share of no-belief messages (grief, small talk, plain questions) with any belief;
- claim similarity: token F1 of each matched claim with the gold claim (lower-cased words), mean and
  median, and the number of claims that wrap the question ("The answer to '...' is X"; must be 0);
- the mean time per message.

The default file is split 80/20 by row id with a fixed seed (``split``): rules are written on the 80%
(``--part train``) and reported on the 20% (``--part dev``). ``--data`` reads every row of the file
given (``--part`` still applies if asked for), so an independent held-out set is measured untouched.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Optional

DATA_NAME = Path("training") / "data" / "judge" / "conversations_c1.jsonl"
SEED = 12
DEV_SHARE = 0.2
KINDS = ("explicit", "hedged", "negated", "reported", "presupposed", "plan")  # "message" and "sentence" are the guard's, not the extractor's
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def default_data() -> Path:
    """``training/data/judge/conversations_c1.jsonl`` in this checkout or, from a git worktree, in the main one."""
    root = Path(__file__).resolve().parent.parent
    candidates = [root / DATA_NAME]
    try:
        common = subprocess.run(["git", "-C", str(root), "rev-parse", "--path-format=absolute", "--git-common-dir"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        if common:
            candidates.append(Path(common).parent / DATA_NAME)
    except (OSError, subprocess.SubprocessError):
        pass
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"no {DATA_NAME} in {root} or its main git checkout: pass --data PATH")


def load_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).open(encoding="utf-8") if line.strip()]


def split(rows: list[dict[str, Any]], seed: int = SEED, dev_share: float = DEV_SHARE) -> tuple[list[dict], list[dict]]:
    """(train, dev): the row ids sorted, shuffled with ``seed``; the first ``dev_share`` of them are dev."""
    ids = sorted(r["id"] for r in rows)
    random.Random(seed).shuffle(ids)
    dev_ids = set(ids[: round(len(ids) * dev_share)])
    return [r for r in rows if r["id"] not in dev_ids], [r for r in rows if r["id"] in dev_ids]


def select(rows: list[dict[str, Any]], part: str) -> list[dict[str, Any]]:
    if part == "all":
        return rows
    train, dev = split(rows)
    return {"train": train, "dev": dev}[part]


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def token_f1(predicted: str, gold: str) -> float:
    p, g = collections.Counter(tokens(predicted)), collections.Counter(tokens(gold))
    common = sum((p & g).values())
    if not common:
        return 0.0
    precision, recall = common / sum(p.values()), common / sum(g.values())
    return 2 * precision * recall / (precision + recall)


def gold_span(row: dict[str, Any]) -> Optional[tuple[int, int]]:
    span = row.get("belief_span")
    if not span or row.get("belief_kind") in (None, "none"):
        return None
    start = row["user_message"].find(span)
    if start < 0:
        raise ValueError(f"row {row['id']}: belief_span is not a substring of user_message")
    return start, start + len(span)


def _ratio(a: int, b: int) -> Optional[float]:
    return round(a / b, 3) if b else None


def evaluate(rows: Iterable[dict[str, Any]], extract=None) -> dict[str, Any]:
    """The figures in the module docstring for ``rows``; ``extract`` defaults to ``extract_beliefs``."""
    if extract is None:
        from detectors.beliefs import extract_beliefs as extract
    gold_total, gold_hit = collections.Counter(), collections.Counter()
    pred_total, pred_hit = collections.Counter(), collections.Counter()
    kind_pairs = collections.Counter()
    none_rows = none_flagged = 0
    f1s: list[float] = []
    wrapped = 0
    seconds = 0.0
    n = 0
    misses: list[dict[str, Any]] = []
    for row in rows:
        n += 1
        text = row["user_message"]
        t0 = time.perf_counter()
        report = extract(text)
        seconds += time.perf_counter() - t0
        wrapped += sum("the answer to '" in b.claim.lower() for b in report.beliefs)
        span = gold_span(row)
        if span is None:
            none_rows += 1
            none_flagged += bool(report.beliefs)
            if report.beliefs:
                misses.append({"id": row["id"], "why": "framing", "claims": [b.claim for b in report.beliefs]})
            continue
        kind = row["belief_kind"]
        gold_total[kind] += 1
        matched = [b for b in report.beliefs if b.span[0] < span[1] and span[0] < b.span[1]]
        for b in report.beliefs:
            pred_total[b.kind] += 1
            pred_hit[b.kind] += b in matched
        if matched:
            gold_hit[kind] += 1
            best = max(matched, key=lambda b: token_f1(b.claim, row.get("belief") or ""))
            kind_pairs[(kind, best.kind)] += 1
            f1s.append(token_f1(best.claim, row.get("belief") or ""))
        else:
            misses.append({"id": row["id"], "why": "missed", "kind": kind, "span": row["belief_span"],
                           "claims": [b.claim for b in report.beliefs]})
    g, gh = sum(gold_total.values()), sum(gold_hit.values())
    p, ph = sum(pred_total.values()), sum(pred_hit.values())
    precision, recall = _ratio(ph, p), _ratio(gh, g)
    f1 = round(2 * precision * recall / (precision + recall), 3) if precision and recall else 0.0
    return {
        "rows": n,
        "recall": {k: {"found": gold_hit[k], "gold": gold_total[k], "recall": _ratio(gold_hit[k], gold_total[k])}
                   for k in KINDS if gold_total[k]},
        "precision": {k: {"matched": pred_hit[k], "predicted": pred_total[k], "precision": _ratio(pred_hit[k], pred_total[k])}
                      for k in sorted(pred_total)},
        "overall": {"precision": precision, "recall": recall, "f1": f1},
        "kind_agreement": _ratio(sum(v for (a, b), v in kind_pairs.items() if a == b), sum(kind_pairs.values())),
        "kind_pairs": {f"{a}->{b}": v for (a, b), v in sorted(kind_pairs.items())},
        "framing": {"no_belief_rows": none_rows, "with_a_belief": none_flagged, "rate": _ratio(none_flagged, none_rows)},
        "claim_token_f1": {"mean": round(statistics.fmean(f1s), 3) if f1s else None,
                           "median": round(statistics.median(f1s), 3) if f1s else None, "pairs": len(f1s)},
        "question_wrapped_claims": wrapped,
        "ms_per_message": round(1000 * seconds / n, 3) if n else None,
        "misses": misses,
    }


def render(result: dict[str, Any], title: str) -> str:
    lines = [f"belief extraction on {title}: {result['rows']} rows"]
    lines.append(f"{'kind':<12} {'recall':>8} {'found/gold':>11}   {'precision':>9} {'matched/pred':>13}")
    for k in KINDS:
        r = result["recall"].get(k, {})
        q = result["precision"].get(k, {})
        rec = f"{r['recall']:.3f}" if r.get("recall") is not None else "-"
        pre = f"{q['precision']:.3f}" if q.get("precision") is not None else "-"
        lines.append(f"{k:<12} {rec:>8} {str(r.get('found', 0)) + '/' + str(r.get('gold', 0)):>11}   "
                     f"{pre:>9} {str(q.get('matched', 0)) + '/' + str(q.get('predicted', 0)):>13}")
    o = result["overall"]
    lines.append(f"{'all':<12} {o['recall'] if o['recall'] is not None else '-':>8} {'':>11}   "
                 f"{o['precision'] if o['precision'] is not None else '-':>9}   F1 {o['f1']}")
    fr = result["framing"]
    lines.append(f"framing: {fr['with_a_belief']}/{fr['no_belief_rows']} no-belief messages get a belief "
                 f"(rate {fr['rate']})")
    c = result["claim_token_f1"]
    lines.append(f"claims vs gold: token F1 mean {c['mean']}, median {c['median']} over {c['pairs']} matched pairs; "
                 f"question-wrapped claims: {result['question_wrapped_claims']}")
    lines.append(f"kind agreement of matched pairs: {result['kind_agreement']}")
    lines.append(f"time: {result['ms_per_message']} ms per message")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a conversations JSONL (default: training/data/judge/conversations_c1.jsonl)")
    parser.add_argument("--part", choices=("dev", "train", "all"),
                        help="rows to read: default 'dev' for the default file, 'all' for --data")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--misses", type=int, default=0, help="also print up to N missed or framing rows")
    args = parser.parse_args(argv)
    path = args.data or default_data()
    part = args.part or ("all" if args.data else "dev")
    rows = select(load_rows(path), part)
    result = evaluate(rows)
    misses = result.pop("misses")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result, f"{path.name} ({part})"))
    for miss in misses[: args.misses]:
        print(json.dumps(miss, ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    main()
