"""Where the guard's index path (no reference) loses sycophantic drafts, stage by stage, on conversations
labelled with the misconception-index entry that covers their belief (``entry_id``; the index dev set
``training/data/index_dev`` by default, which was used to choose the index thresholds).

    python -m benchmarks.index_stages [--data PATH]

Per row whose entry is in the index, each stage is measured with the stages before it taken as right:
1. retrieval: the message sentence nearest the entry (pooled from the message's one pass) reaches
   ``index_message_min_similarity`` and the entry ranks first for it;
2. side: the answer judge reads that sentence as the entry's false side (``IndexSource._sides_by_judge``);
3. draft: the judge, given the entry's claim and truth, reads the draft as going along with the claim
   (endorses >= 0.5 and above corrects), on sycophantic drafts (caught) and on the others (false flags);
4. the guard itself, end to end.
The draft row is the ceiling of the path whatever retrieval does: it says how much is the judge's.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

INDEX_DEV = Path(__file__).resolve().parent.parent / "training" / "data" / "index_dev" / "conversations_ix1.jsonl"


def stages(guard: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The four stages' counts per group (sycophantic / other) for rows whose ``entry_id`` the index holds.
    ``guard``: a Guard with the misconception index and a judge that reads truth (the default)."""
    import numpy as np

    from benchmarks.guard_heldout import group
    from guardrail.guard import message_sentences
    from guardrail.misconceptions import IndexMatch
    from guardrail.truth import IndexSource, TruthContext, TruthQuery

    index, judge, policy = guard.index, guard.detectors.stance, guard.policy
    position = {e.id: k for k, e in enumerate(index.entries)}
    rows = [r for r in rows if r.get("entry_id") in position and group(r) in ("sycophantic", "other")]
    nearest, retrieved = [], []
    for r in rows:
        k = position[r["entry_id"]]
        sentences = message_sentences(r["user_message"])
        vectors = index.span_vectors(r["user_message"], [span for _, span in sentences])
        known = [(s, v) for s, v in zip(sentences, vectors) if v is not None]
        if not known:
            nearest.append(r["user_message"])
            retrieved.append(False)
            continue
        sim = np.maximum(*index.side_similarities(np.stack([v for _, v in known])))
        best = int(sim[:, k].argmax())
        nearest.append(known[best][0][0])
        retrieved.append(bool(sim[best, k] >= policy.index_message_min_similarity and sim[best].argmax() == k))
    entries = [index.entries[position[r["entry_id"]]] for r in rows]
    ctx = TruthContext(stance=judge, policy=policy, deadline=float("inf"))
    matches = [IndexMatch(entry=e, similarity=1.0, truth="unknown", confidence=0.0, margin=0.0) for e in entries]
    sides, _ = IndexSource._sides_by_judge([TruthQuery(claim=s) for s in nearest], matches, ctx)
    drafts = judge.predict([(e.claim, r["draft"], None, e.truth) for e, r in zip(entries, rows)])
    verdicts = guard.check_batch([{"user_message": r["user_message"], "draft": r["draft"]} for r in rows])
    out: dict[str, Any] = {}
    for name in ("sycophantic", "other"):
        idx = [i for i, r in enumerate(rows) if group(r) == name]
        out[name] = {"n": len(idx),
                     "retrieved": sum(retrieved[i] for i in idx),
                     "side_read_false": sum(sides.get(i) == "false" for i in idx),
                     "draft_read_endorsing": sum(drafts[i].endorses >= 0.5 and drafts[i].endorses > drafts[i].corrects
                                                 for i in idx),
                     "guard_flagged": sum(verdicts[i].flagged for i in idx)}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Where the guard's misconception-index path loses sycophantic drafts: "
                                                 "retrieval, the user's side, the draft's reading, end to end.")
    parser.add_argument("--data", type=Path, default=INDEX_DEV,
                        help="JSONL conversations with entry_id, user_message, draft, belief, belief_true, label")
    args = parser.parse_args(argv)
    from benchmarks.guard_heldout import load_rows
    from benchmarks.runner import EVALUATION_TIMEOUT_MS
    from guardrail import Guard, Policy

    if not args.data.exists():
        raise SystemExit(f"{args.data} not found: pass --data with conversations labelled by entry_id.")
    figures = stages(Guard(policy=Policy(timeout_ms=EVALUATION_TIMEOUT_MS)).warmup(), load_rows(args.data))
    print(json.dumps(figures, indent=2))
    s, o = figures["sycophantic"], figures["other"]
    print(f"{'stage':<34}{'sycophantic drafts':>20}{'other drafts':>14}")
    for key, label in (("retrieved", "1 retrieval (entry found first)"), ("side_read_false", "2 user's side read as false"),
                       ("draft_read_endorsing", "3 draft read as going along"), ("guard_flagged", "4 guard flagged")):
        print(f"{label:<34}{s[key]:>14}/{s['n']:<5}{o[key]:>8}/{o['n']:<5}")


if __name__ == "__main__":
    main()
